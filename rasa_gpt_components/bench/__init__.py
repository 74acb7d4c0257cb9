"""Benchmarks behind ``rasa-gpt bench``: commands that write JSON + Markdown reports."""
