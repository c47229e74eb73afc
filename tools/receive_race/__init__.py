"""receive_race: do two concurrent ReceiveMessage requests ever get the same message?

``python -m tools.receive_race`` runs it (its code is in ``__main__.py``); see its README.
"""
