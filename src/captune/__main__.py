"""``python -m captune`` runs the command line."""

from captune.cli import main

if __name__ == "__main__":
    main()
