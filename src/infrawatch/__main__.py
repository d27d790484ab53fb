from infrawatch.entry import main

main()
