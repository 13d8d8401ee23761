"""Network architectures of Lumen's reference models (plain PyTorch, TorchScript-able)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv(cin, cout, dims, stride=1):
    Conv = nn.Conv2d if dims == 2 else nn.Conv3d
    Norm = nn.BatchNorm2d if dims == 2 else nn.InstanceNorm3d
    norm = Norm(cout) if dims == 2 else Norm(cout, affine=True)
    return nn.Sequential(Conv(cin, cout, 3, stride, 1, bias=False), norm, nn.LeakyReLU(0.1, inplace=True))


class UNet(nn.Module):
    """A compact U-Net: `levels` resolutions, two 3x3 convolutions per level, strided
    convolutions down, transposed convolutions (kernel 3, stride 2) up, skip connections by concatenation.
    residual=True: the output is input - net(input) (the net predicts what to remove),
    the usual form for denoisers (DnCNN, RED-CNN)."""

    def __init__(self, dims=2, cin=1, cout=1, width=32, levels=3, residual=False):
        super().__init__()
        self.dims = dims
        self.residual = residual
        ch = [width * 2 ** i for i in range(levels)]
        # Stage i: (for i > 0 a strided convolution down, then) two convolutions.
        self.enc = nn.ModuleList()
        c = cin
        for i, w in enumerate(ch):
            layers = [] if i == 0 else [_conv(c, w, dims, stride=2)]
            layers += [_conv(c if i == 0 else w, w, dims), _conv(w, w, dims)]
            self.enc.append(nn.Sequential(*layers))
            c = w
        Up = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(len(ch) - 1, 0, -1):
            # kernel 3, stride 2 (MONAI's up-sampling; Lumen's CPU kernels speed it up in 3D)
            self.up.append(Up(ch[i], ch[i - 1], 3, 2, padding=1, output_padding=1))
            self.dec.append(nn.Sequential(_conv(2 * ch[i - 1], ch[i - 1], dims), _conv(ch[i - 1], ch[i - 1], dims)))
        Conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.head = Conv(ch[0], cout, 1)

    def forward(self, x):
        skips = []
        h = x
        for enc in self.enc:
            h = enc(h)
            skips.append(h)
        for j, (up, dec) in enumerate(zip(self.up, self.dec)):
            skip = skips[len(skips) - 2 - j]
            h = up(h)
            # Odd sizes: crop or pad the up-sampled map to the skip's size.
            h = _match(h, skip, self.dims)
            h = dec(torch.cat([h, skip], 1))
        out = self.head(h)
        return x - out if self.residual else out


def _match(h, ref, dims: int):
    if dims == 2:
        dh, dw = ref.shape[2] - h.shape[2], ref.shape[3] - h.shape[3]
        if dh != 0 or dw != 0:
            h = F.pad(h, [0, dw, 0, dh])
    else:
        dd, dh, dw = ref.shape[2] - h.shape[2], ref.shape[3] - h.shape[3], ref.shape[4] - h.shape[4]
        if dd != 0 or dh != 0 or dw != 0:
            h = F.pad(h, [0, dw, 0, dh, 0, dd])
    return h


class NoiseGrader(nn.Module):
    """A fully convolutional classifier for any slice size: local features -> per-pixel
    class logits and a per-pixel weight; the slice's logits are the weighted mean (the net
    learns where noise can be read: homogeneous soft tissue, not air or bone edges)."""

    def __init__(self, classes=4, width=24):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv(1, w, 2), _conv(w, w, 2), _conv(w, 2 * w, 2, stride=2), _conv(2 * w, 2 * w, 2),
            _conv(2 * w, 2 * w, 2, stride=2), _conv(2 * w, 2 * w, 2))
        self.logits = nn.Conv2d(2 * w, classes, 1)
        self.weight = nn.Conv2d(2 * w, 1, 1)

    def forward(self, x):
        f = self.features(x)
        logits = self.logits(f).flatten(2)                 # [B, C, P]
        weight = torch.softmax(self.weight(f).flatten(2), -1)  # [B, 1, P]
        return (logits * weight).sum(-1)


def _log_interval(a, b):
    """log(sigmoid(a) - sigmoid(b)) for a > b, accurate far out on either side (uses
    sigmoid(a) - sigmoid(b) = sigmoid(-b) - sigmoid(-a) where both are near 1)."""
    flip = (a + b) > 0
    hi = torch.where(flip, -b, a)
    lo = torch.where(flip, -a, b)
    la = F.logsigmoid(hi)
    return la + torch.log1p(-torch.exp(F.logsigmoid(lo) - la))


class NoiseLevelGrader(nn.Module):
    """Estimates the noise SD of a CT slice (any size) and grades it in ordered classes.

    Local features -> per-pixel estimates of ln(SD / HU) and a per-pixel weight; the slice's
    estimate s is their weighted mean (the net learns where noise can be read). Returns
    [B, C + 1]: for each class, the log-probability that ln SD lies in the class's bin (equal
    bins of ln SD centred on `centres` HU) under a logistic of scale `spread` around s; the
    last column is s. Every class probability is a function of s alone and the bins are of
    equal width, so the most probable class is the bin s lies in: the grade can only rise
    with the estimate."""

    def __init__(self, centres, width=24):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv(1, w, 2), _conv(w, w, 2), _conv(w, 2 * w, 2, stride=2), _conv(2 * w, 2 * w, 2),
            _conv(2 * w, 2 * w, 2, stride=2), _conv(2 * w, 2 * w, 2))
        self.value = nn.Conv2d(2 * w, 1, 1)
        self.weight = nn.Conv2d(2 * w, 1, 1)
        c = torch.log(torch.tensor(centres, dtype=torch.float32))
        half = float(c[1] - c[0]) / 2
        nn.init.constant_(self.value.bias, float(c.mean()))
        self.register_buffer("lower", (c - half)[None])
        self.register_buffer("upper", (c + half)[None])
        self.register_buffer("spread", torch.tensor(0.1))

    def estimate(self, x):
        f = self.features(x)
        v = self.value(f).flatten(2)
        weight = torch.softmax(self.weight(f).flatten(2), -1)
        return (v * weight).sum(-1)  # [B, 1]

    def forward(self, x):
        s = self.estimate(x)
        logp = _log_interval((self.upper - s) / self.spread, (self.lower - s) / self.spread)
        return torch.cat([logp, s], 1)
