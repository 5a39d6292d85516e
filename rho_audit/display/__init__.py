"""What a person watches: live progress (plain and Rich) and the Textual monitor (``tui``)."""
