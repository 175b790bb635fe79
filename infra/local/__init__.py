"""The embedded local stack: AWS API emulator, local Lambda service, Prefect server, demo."""
