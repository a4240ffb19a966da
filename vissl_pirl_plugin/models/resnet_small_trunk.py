"""A small ResNet trunk for CPU demos, tests and small GPUs, registered as ``resnet_small``.

VISSL's ResNet trunk supports depths 50/101/152 only. This one is a ResNet-18 or
ResNet-10 (basic blocks, He et al. 2016) with a configurable base width, exposing
VISSL's feature names (``conv1``, ``res2`` ... ``res5``, ``res5avg``, ``flatten``), so PIRL
heads, feature extraction and the linear probe work unchanged. Its output
dimension is ``8 * WIDTH`` (512 for the standard ResNet-18). The paper configs keep
ResNet-50.

    MODEL.TRUNK: {NAME: resnet_small, RESNET_SMALL: {DEPTH: 18, WIDTH: 64}}
"""
from typing import List

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock
from vissl.models.model_helpers import Flatten, get_trunk_forward_outputs
from vissl.models.trunks import register_model_trunk

BLOCKS_PER_STAGE = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2)}


def small_resnet_depth_and_width(trunk_config) -> tuple:
    params = trunk_config.get("RESNET_SMALL", {})
    return int(params.get("DEPTH", 18)), int(params.get("WIDTH", 64))


@register_model_trunk("resnet_small")
class ResNetSmall(nn.Module):
    def __init__(self, model_config, model_name: str) -> None:
        super().__init__()
        depth, width = small_resnet_depth_and_width(model_config.TRUNK)
        if depth not in BLOCKS_PER_STAGE:
            raise ValueError(f"MODEL.TRUNK.RESNET_SMALL.DEPTH={depth}: use one of "
                             f"{sorted(BLOCKS_PER_STAGE)} (VISSL's resnet trunk has 50/101/152).")
        self.inplanes = width
        blocks = [("conv1", nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)),
                  ("bn1", nn.BatchNorm2d(width)), ("conv1_relu", nn.ReLU(inplace=True)),
                  ("maxpool", nn.MaxPool2d(3, stride=2, padding=1))]
        for stage, count in enumerate(BLOCKS_PER_STAGE[depth]):
            blocks.append((f"layer{stage + 1}",
                           self._make_stage(width * 2 ** stage, count, 1 if stage == 0 else 2)))
        blocks += [("avgpool", nn.AdaptiveAvgPool2d((1, 1))), ("flatten", Flatten(1))]
        self._feature_blocks = nn.ModuleDict(blocks)
        self.feat_eval_mapping = {"conv1": "conv1_relu", "res1": "maxpool", "res2": "layer1",
                                  "res3": "layer2", "res4": "layer3", "res5": "layer4",
                                  "res5avg": "avgpool", "flatten": "flatten"}
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def _make_stage(self, planes: int, count: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(count - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, out_feat_keys: List[str] = None) -> List[torch.Tensor]:
        return get_trunk_forward_outputs(x, out_feat_keys=out_feat_keys,
                                         feature_blocks=self._feature_blocks,
                                         feature_mapping=self.feat_eval_mapping)
