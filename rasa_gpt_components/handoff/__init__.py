"""The hand-off to a human agent: how frustrated the customer is
(``frustration``), what the agent must know (``summary``), and its delivery to
the agents' desk (``webhook``). All of it reads the conversation's events as
dictionaries (``conversation``), the form both Rasa's tracker and the action
server's tracker give. See docs/handoff.md."""
