"""``python -m testbed.agent <agent.json>``: run a route agent."""
from testbed.agent.agent import main

raise SystemExit(main())
