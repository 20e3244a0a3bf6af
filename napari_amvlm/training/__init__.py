"""Training: the loops (stage-1 pre-training, stage-2 Mean Teacher), each a generator of typed progress events
(``events.py``; one JSON object per line in ``progress.py``), and retraining rounds from an annotation project
in a separate process (``rounds.py``; the exported data in ``round_data.py``, the new weights in
``round_models.py``, the process's own settings in ``child.py``)."""
