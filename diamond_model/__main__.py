from diamond_model.cli import main

raise SystemExit(main())
