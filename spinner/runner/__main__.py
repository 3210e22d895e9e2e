"""`python -m spinner.runner ...`: run one task try."""

from spinner.runner.main import main

raise SystemExit(main())
