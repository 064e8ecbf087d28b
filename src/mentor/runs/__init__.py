"""Run folders and what reads and writes them: the folder's life cycle (claim, partial,
finish; :mod:`.folder`), the environment a run records (:mod:`.env`), reading a finished run
back (:mod:`.read`), experiment trackers (:mod:`.trackers`) and progress bars
(:mod:`.progress`)."""
