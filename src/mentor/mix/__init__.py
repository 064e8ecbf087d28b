"""Mixing of inputs for semi-supervised training: MixUp, CutMix, bidirectional copy-paste
(single and multiscale patches) and the frequency amplitude switch. Importing this package
registers them in :data:`mentor.registry.MIXERS`."""

from .mixers import (BidirectionalCopyPaste, CopyPaste, CutMix, FrequencyAmplitudeSwitch,
                     MixUp, MultiScalePatches, amplitude_switch, beta_draw, box_mask,
                     mix_probs, mixed_label_weights, mixup, paste, patch_mask, region_weights)

__all__ = ["BidirectionalCopyPaste", "CopyPaste", "CutMix", "FrequencyAmplitudeSwitch", "MixUp",
           "MultiScalePatches", "amplitude_switch", "beta_draw", "box_mask", "mix_probs",
           "mixed_label_weights", "mixup", "paste", "patch_mask", "region_weights"]
