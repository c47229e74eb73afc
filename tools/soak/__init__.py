"""The soak: sqs-rpc under sustained load in several processes, checked call by call.

``python -m tools.soak`` runs it (:mod:`tools.soak.run`); see tools/soak/README.md.
"""
