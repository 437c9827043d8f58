"""The seed's §4 wired from the pieces: held-out evaluation, R1-Zero, and the tiny model's card."""
