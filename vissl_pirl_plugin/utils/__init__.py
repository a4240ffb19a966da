"""Helpers every layer may use, as VISSL's and Detectron2's ``utils/``: the user's mistakes
(``user_errors``), ranks agreeing on failed checks (``distributed_checks``), the host-read
detector (``host_reads``), the kernel-launch counter (``launch_counter``), VISSL 0.1.6's patches
for today's stack (``vissl_compat``) and the third-party warnings silenced
(``third_party_warnings``). Importing this package imports none of them (``vissl_compat`` must
run before VISSL is imported)."""
