"""Container images: Dockerfiles, their entrypoint, and the generator of their requirement files."""
