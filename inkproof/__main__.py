from inkproof.cli.app import main

main()
