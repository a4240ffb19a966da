"""PIRL's objective: the loss ``pirl_loss`` (Eq. 5), its NCE / InfoNCE maths (Eq. 2-4), negative
sampling from D \\ {I} and the memory bank of m_I (§3.2), the kNN vote on the bank (NPID §3.4). Pure tensor logic, except ``pirl_loss``."""
