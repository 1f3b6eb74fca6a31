from tools.gate.cli import main

raise SystemExit(main())
