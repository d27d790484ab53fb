from infrawatch.cli import main

main()
