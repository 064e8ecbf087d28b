"""The command implementations behind ``mentor`` (:mod:`mentor.cli` parses the arguments):
``run`` (:mod:`.run`; ``task: tokens`` recipes in :mod:`.tokens`), ``active`` (:mod:`.active`),
``bench`` (:mod:`.bench`), ``export`` (:mod:`.export`) and ``label`` (:mod:`.label`)."""
