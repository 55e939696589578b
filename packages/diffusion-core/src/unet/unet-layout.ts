/**
 * The block structure of a U-Net config: which res-blocks, transformer blocks and resamplers exist,
 * their channels, and how they are numbered both in the model (`down_res.{i}`, `up_attn.{i}`, ...)
 * and in diffusers' UNet2DConditionModel (`down_blocks.{level}.resnets.{j}`, ...). One source for
 * the model's construction, its forward pass, its activation names and the diffusers weight mapping.
 */
import { type UNetConfig, levelHeads, levelLayers, upAttentionLevelsOf } from './unet-config';

export interface ResnetLayout {
  /** Index in the model's flat list (`down_res.{index}` / `up_res.{index}`). */
  index: number;
  /** Position in its diffusers block (`resnets.{j}`). */
  j: number;
  /** Input channels (for up blocks: the running features plus the concatenated skip). */
  inChannels: number;
  outChannels: number;
  /** Followed by a transformer block (`down_attn.{index}` / `attentions.{j}`). */
  attention: boolean;
}

export interface DownBlockLayout {
  level: number;
  channels: number;
  heads: number;
  resnets: ResnetLayout[];
  /** A stride-2 conv at the end (`downsample.{level}` / `downsamplers.0.conv`). */
  downsample: boolean;
}

export interface UpBlockLayout {
  /** Index of the up block, 0 = the bottom (diffusers' `up_blocks.{block}`, the model's `up.{block}`). */
  block: number;
  level: number;
  channels: number;
  heads: number;
  resnets: ResnetLayout[];
  /** Nearest 2x then a 3x3 conv at the end (`upsample.{block}` / `upsamplers.0.conv`). */
  upsample: boolean;
}

export interface UNetLayout {
  levels: number;
  down: DownBlockLayout[];
  /** The mid block (res-block, [transformer], res-block), or null. */
  mid: { channels: number; heads: number; attention: boolean } | null;
  up: UpBlockLayout[];
}

/** The structure of `config` (assumed resolved). */
export function unetLayout(config: UNetConfig): UNetLayout {
  const ch = config.blockChannels;
  const levels = ch.length;
  const downAttn = new Set(config.attentionLevels);
  const upAttn = new Set(upAttentionLevelsOf(config));
  const skips = [ch[0]];
  const down: DownBlockLayout[] = [];
  let cin = ch[0];
  let i = 0;
  for (let level = 0; level < levels; level++) {
    const resnets: ResnetLayout[] = [];
    for (let j = 0; j < levelLayers(config, level); j++, i++) {
      resnets.push({ index: i, j, inChannels: cin, outChannels: ch[level], attention: downAttn.has(level) });
      cin = ch[level];
      skips.push(cin);
    }
    const downsample = level !== levels - 1;
    if (downsample) skips.push(cin);
    down.push({ level, channels: ch[level], heads: levelHeads(config, level), resnets, downsample });
  }
  const mid = config.midBlock ? { channels: ch[levels - 1], heads: levelHeads(config, levels - 1), attention: config.midAttention } : null;
  const up: UpBlockLayout[] = [];
  i = 0;
  for (let level = levels - 1; level >= 0; level--) {
    const resnets: ResnetLayout[] = [];
    for (let j = 0; j < levelLayers(config, level) + 1; j++, i++) {
      const skip = skips.pop();
      if (skip === undefined) throw new RangeError(`UNetConfig.layersPerBlock: the up path needs more skip connections than the down path makes (at level ${level})`);
      resnets.push({ index: i, j, inChannels: cin + skip, outChannels: ch[level], attention: upAttn.has(level) });
      cin = ch[level];
    }
    up.push({ block: levels - 1 - level, level, channels: ch[level], heads: levelHeads(config, level), resnets, upsample: level !== 0 });
  }
  return { levels, down, mid, up };
}
