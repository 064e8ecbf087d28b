"""Label store: teacher outputs kept as a durable, verified, sharded Arrow data set.

Run the teacher once (``mentor label`` or :func:`write_store`), then train any number of
students from the store (:class:`LabelStore` ``.as_teacher()``), with reproducible
augmented views (:class:`Views`) when the store was made with them.
"""

from .fingerprint import data_fingerprint, teacher_fingerprint
from .kinds import FullLogits, Hard, Kind, Tensors, TopK, make_kind
from .store import LabelStore, StoreError, StoreTeacher, store_lock, write_store
from .views import Views

__all__ = ["FullLogits", "Hard", "Kind", "LabelStore", "StoreError", "StoreTeacher", "Tensors",
           "TopK", "Views", "data_fingerprint", "make_kind", "store_lock",
           "teacher_fingerprint", "write_store"]
