"""Example Shop's backend: the database (``db``) and the business rules
(``service``), without Rasa. The custom actions in ``actions/`` use it; any
other program (a web shop, an admin tool) could too."""
