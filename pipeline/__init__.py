"""Clean and migrate a WordPress-to-Jekyll blog archive committed with git conflicts."""

import os

__version__ = "0.1.0"

# Arrow's memory pool, unless the user chose one: the system's malloc rather than the bundled
# mimalloc, which kept the pages it freed (36 MB of a 20,000-post run's 177 MB peak, for
# Arrow tables that never held more than 12 MB at once). Arrow reads this when pyarrow is
# imported, so it is set before any module of the package imports it. Measured in
# BENCHMARKS.md; outputs do not depend on the allocator.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

# OpenBLAS, loaded with numpy (which pyarrow imports, outside the ``pipeline`` command),
# starts a thread per core at import, and they spin: 0.1 s of CPU per start-up on this
# 2-core machine, taken from the workers of a run that does no linear algebra (archive:
# 0.93 -> 0.87 s). Same rule as above: unless the user chose, before any module of the
# package imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Modules pyarrow does without, left out when pipeline.tables imports it (and only then: the
# Dask engine imports pyarrow whole, first). Only the ``pipeline`` command (``cli.run``,
# before anything imports pyarrow) leaves them out (``COMMAND_ARROW_WITHOUT``), as nothing
# in its process needs what they are for:
# - numpy, to convert numpy objects, which the command never hands Arrow (0.04 s of CPU in
#   every command that writes a table, taken from the workers it runs beside; archive:
#   0.750 -> 0.720 s, medians of 15 alternating runs). Without it ``to_pandas()`` would
#   crash, which the command never calls;
# - cloudpickle, which pyarrow loads for nothing (``pyarrow.lib.pickle`` ends up the
#   standard pickle anyway);
# - the clients of cloud filesystems, which ``pyarrow.fs`` loads when it can: without them
#   pyarrow opens no ``s3://`` or ``gs://`` URL itself. The local engine refuses URLs, and
#   the Dask engine reaches them through fsspec; a command that let pyarrow open a URL
#   would have to keep them;
# - dateutil, which pyarrow's type inference looks for at each inference, for its
#   relativedelta; the command builds every array from a schema and infers none.
# Together 0.01 s of CPU and 4 to 5 MiB of the main process on the archive (session 17). A
# library user's process keeps them all for pyarrow's own use.
ARROW_WITHOUT: tuple[str, ...] = ()
COMMAND_ARROW_WITHOUT: tuple[str, ...] = (
    "numpy",
    "cloudpickle",
    "pyarrow._azurefs",
    "pyarrow._gcsfs",
    "pyarrow._hdfs",
    "pyarrow._s3fs",
    "dateutil",
)
