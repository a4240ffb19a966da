"""Models: the head ``pirl_jigsaw_head`` (g, Fig. 3) and the CPU-sized trunk ``resnet_small``."""
