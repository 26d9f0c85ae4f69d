"""`python -m sftbench`: the same command line as `sftbench`."""
from .cli import main

if __name__ == "__main__":
    main()
