"""``python -m testbed.agent <agent.json>``: run a route agent."""
from testbed.agent.main import main

raise SystemExit(main())
