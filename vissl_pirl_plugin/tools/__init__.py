"""What users run with ``python -m vissl_pirl_plugin.tools.NAME``: demo, demo data, linear probe,
invariance analysis, VOC07 SVM, checkpoint conversion, and the trained-model loader and figure helpers they share."""
