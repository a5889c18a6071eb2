"""Records that last: the long-term store of every trade, fill, order, equity point, signal, audit
record, risk decision and DCA deal (Parquet by kind and month), the archiver process that fills it
from the Redis streams, exports, reports, paper-vs-live drift, backup and restore.

Layer: above ``state`` and ``core`` (it reads Redis only through ``state``), below ``ui``, ``ops`` and
``cli``. Nothing here runs in the worker's threads.
"""
