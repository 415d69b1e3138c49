from inkproof.cli.app import main

# Guarded: a service worker process (multiprocessing "spawn") imports the parent's main module.
if __name__ == "__main__":
    main()
