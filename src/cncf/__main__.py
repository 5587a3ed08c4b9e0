from cncf.receptions.cli import main

main()
