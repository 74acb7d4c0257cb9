"""Rasa policies of rasa_gpt_components."""
