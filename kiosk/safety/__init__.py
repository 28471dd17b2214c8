"""Child-safety judgement of story text: a learned classifier behind the story gates' blocklist.

The corpus it learns from lives in ``corpus/safety/`` (team-written, reviewed like code); the trained
artefact in ``models/safety/``; ``kiosk story check`` is its command-line face.
"""
