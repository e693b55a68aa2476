"""Experiments built from ordinary training runs, recorded in the study store beside the searches.

``final.py`` retrains a study's best trial (or its top K) per seed on the whole training split and
evaluates it on test (``train --from-study``); ``curve.py`` trains each regime on nested shares of the
training split (``curve``). Both call ``study.training.train`` (the code a trial runs) and report
through ``study.events``.
"""
