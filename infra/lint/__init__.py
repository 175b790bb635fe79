"""Tools of the offline checks (`make lint`) that the project runs from its own files."""
