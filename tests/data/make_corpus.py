#!/usr/bin/python3
"""Builds the DICOM ingest test corpus.

usage: make_corpus.py OUT_DIR SAMPLE_CT_DIR

Everything is derived from real data (the bundled CT slices, pydicom's test files)
re-encoded with independent tools (dcmtk, gdcmconv), or from a "ramp phantom": images
whose every pixel holds ramp(x, y, z) = round(2x + 3y + 5z) + 1000 of its own LPS
position, so any voxel that a reader puts at the wrong place shows up as a wrong value.
The C++ tests use the same formula (tests/imaging/Corpus.h).
"""
import math
import warnings
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

OUT, SAMPLE = sys.argv[1], sys.argv[2]
warnings.simplefilter("ignore")  # pydicom warns about the deliberately invalid values below
PYDICOM_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
ROOT_UID = "1.2.826.0.1.3680043.10.1143."  # test-only prefix
rng = random.Random(1234)
uid_counter = [0]


def uid():
    uid_counter[0] += 1
    return f"{ROOT_UID}{uid_counter[0]}"


def ramp(p):
    return np.rint(2 * p[..., 0] + 3 * p[..., 1] + 5 * p[..., 2]) + 1000


def mkdir(*parts):
    d = os.path.join(OUT, *parts)
    os.makedirs(d, exist_ok=True)
    return d


def base_dataset(sop_class="1.2.840.10008.5.1.4.1.1.2", modality="CT"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = ROOT_UID + "0"
    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "PHANTOM^RAMP"
    ds.PatientID = "RAMP0001"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.Modality = modality
    ds.StudyDescription = "Ramp phantom"
    return ds


def save(ds, path):
    ds.save_as(path, write_like_original=False)


class Series:
    def __init__(self, description, number=1, study=None):
        self.uid = uid()
        self.study = study or STUDY_UID
        self.description = description
        self.number = number
        self.frame_of_reference = uid()


STUDY_UID = uid()


def ramp_slice(series, position, row, col, rows=32, cols=40, spacing=(2.0, 1.5), extra=None, instance=1,
               pixel_fn=ramp):
    """One CT slice whose pixels hold ramp() of their own LPS position."""
    ds = base_dataset()
    ds.StudyInstanceUID = series.study
    ds.SeriesInstanceUID = series.uid
    ds.SeriesNumber = series.number
    ds.SeriesDescription = series.description
    ds.FrameOfReferenceUID = series.frame_of_reference
    ds.InstanceNumber = instance
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in list(row) + list(col)]
    ds.PixelSpacing = [f"{spacing[0]:.6f}", f"{spacing[1]:.6f}"]  # row spacing (j), column spacing (i)
    ds.SliceThickness = "2.0"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    j, i = np.mgrid[0:rows, 0:cols]
    p = (np.asarray(position)[None, None, :] + i[..., None] * spacing[1] * np.asarray(row)[None, None, :]
         + j[..., None] * spacing[0] * np.asarray(col)[None, None, :])
    ds.PixelData = pixel_fn(p).astype("<i2").tobytes()
    for k, v in (extra or {}).items():
        setattr(ds, k, v)
    return ds


def write_stack(folder, series, positions, row=(1, 0, 0), col=(0, 1, 0), shuffle=False, extra_fn=None, **kw):
    d = mkdir(folder)
    order = list(range(len(positions)))
    names = [f"IM{n:04d}" for n in range(len(positions))]
    if shuffle:
        rng.shuffle(names)
    for k in order:
        extra = extra_fn(k) if extra_fn else None
        ds = ramp_slice(series, positions[k], row, col, extra=extra, instance=(len(positions) - k) if shuffle else k + 1, **kw)
        save(ds, os.path.join(d, names[k]))
    return d


def axial_positions(n, dz, z0=-20.0, x0=-30.0, y0=-25.0):
    return [(x0, y0, z0 + dz * k) for k in range(n)]


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# ------------------------------------------------------------------------------------------
def build_transfer_syntaxes():
    files = sorted(os.listdir(SAMPLE))
    ref = os.path.join(SAMPLE, files[0])
    d = mkdir("transfer")
    shutil.copy(ref, os.path.join(d, "explicit-le.dcm"))
    lossless = {
        "implicit-le": ["dcmconv", "+ti"],
        "explicit-be": ["dcmconv", "+tb"],
        "deflate": ["dcmconv", "+td"],
        "jpeg-lossless-sv1": ["dcmcjpeg", "+e1"],
        "jpeg-lossless": ["dcmcjpeg", "+el"],
        "jpegls-lossless": ["dcmcjpls", "+el"],
        "rle": ["dcmcrle"],
        "j2k-lossless": ["gdcmconv", "--j2k"],
    }
    lossy = {
        "jpeg-extended": ["dcmcjpeg", "+ee"],
        "jpegls-near": ["dcmcjpls", "+en"],
        "j2k-lossy": ["gdcmconv", "--j2k", "--lossy", "-r", "10"],
    }
    for name, cmd in list(lossless.items()) + list(lossy.items()):
        run(cmd + [ref, os.path.join(d, name + ".dcm")])
    with open(os.path.join(d, "LOSSLESS"), "w") as f:
        f.write("\n".join(["explicit-le"] + list(lossless)) + "\n")

    # A real series whose slices are each in another lossless transfer syntax.
    m = mkdir("mixed-series")
    names = list(lossless.items())
    for k, fn in enumerate(files):
        name, cmd = names[k % len(names)]
        run(cmd + [os.path.join(SAMPLE, fn), os.path.join(m, fn)])


def build_measurement_phantom():
    """Anisotropic CT for measurement tests: air (-1000 HU) around a 50 HU box spanning
    x -20..20, y -15..15, z -10..10 mm; voxels 0.6 x 0.8 x 2.5 mm."""
    s = Series("measurement phantom")

    def fn(p):
        inside = (np.abs(p[..., 0]) <= 20) & (np.abs(p[..., 1]) <= 15) & (np.abs(p[..., 2]) <= 10)
        return np.where(inside, 50.0, -1000.0)

    write_stack("phantom/box", s, axial_positions(24, 2.5, z0=-30.0, x0=-30.0, y0=-36.0),
                rows=90, cols=100, spacing=(0.8, 0.6), pixel_fn=fn)


def build_odd_size():
    """13 rows x 11 columns (143 pixels, not a multiple of 8): the frame size Debian's DCMTK
    3.6.7 packs wrongly in a binary SEG."""
    s = Series("odd size")
    write_stack("phantom/odd", s, axial_positions(7, 3.0), rows=13, cols=11, spacing=(1.0, 1.25))


def build_ramp_cases():
    s = Series("axial shuffled")
    write_stack("ramp/axial-shuffled", s, axial_positions(20, 2.5), shuffle=True)

    s = Series("missing slices")
    pos = axial_positions(20, 2.5)
    del pos[8:10]
    write_stack("ramp/missing", s, pos)

    s = Series("non-uniform")
    z, pos = -20.0, []
    for k in range(16):
        pos.append((-30.0, -25.0, z))
        z += 2.0 if k % 2 == 0 else 3.0
    write_stack("ramp/nonuniform", s, pos)

    s = Series("gantry tilt")
    tilt = math.radians(15.0)
    pos = [(-30.0, -25.0 + 2.0 * k * math.tan(tilt), -20.0 + 2.0 * k) for k in range(20)]
    write_stack("ramp/tilt", s, pos, extra_fn=lambda k: {"GantryDetectorTilt": "15"})

    # An MR-like stack whose positions leave the slice normal by 0.4 degrees (what a real
    # oblique MR series does when its positions and orientation are rounded separately):
    # 0.28 mm of drift over the stack, under half a voxel.
    s = Series("small drift")
    drift = math.radians(0.4)
    pos = [(-30.0, -25.0 + 2.0 * k * math.tan(drift), -20.0 + 2.0 * k) for k in range(20)]
    write_stack("ramp/drift", s, pos)

    # One series, two pixel encodings: slices 5-9 store 12 bits (HighBit 11), the others 16.
    s = Series("mixed encoding")
    write_stack("ramp/mixed-encoding", s, axial_positions(10, 2.0),
                extra_fn=lambda k: {"BitsStored": 12, "HighBit": 11} if k >= 5 else None)

    s = Series("oblique")
    a, b = math.radians(30), math.radians(20)
    row = (math.cos(a), math.sin(a), 0.0)
    col = (-math.sin(a) * math.cos(b), math.cos(a) * math.cos(b), math.sin(b))
    n = np.cross(row, col)
    pos = [tuple(np.array([-20.0, -20.0, -10.0]) + 2.0 * k * n) for k in range(15)]
    write_stack("ramp/oblique", s, pos, row=row, col=col)

    s = Series("sagittal")
    pos = [(-20.0 + 2.0 * k, -30.0, 30.0) for k in range(12)]
    write_stack("ramp/sagittal", s, pos, row=(0, 1, 0), col=(0, 0, -1))

    s = Series("two ranges")
    pos = axial_positions(8, 2.0, z0=-40.0) + axial_positions(8, 2.0, z0=60.0)
    write_stack("ramp/two-stacks", s, pos)

    s = Series("axial and coronal")
    d = write_stack("ramp/two-orientations", s, axial_positions(10, 2.0))
    for k in range(6):
        ds = ramp_slice(s, (-30.0, -10.0 + 2.0 * k, 20.0), (1, 0, 0), (0, 0, -1), instance=100 + k)
        save(ds, os.path.join(d, f"COR{k:03d}"))

    s = Series("with localizer")
    d = write_stack("ramp/localizer", s, axial_positions(10, 2.0))
    ds = ramp_slice(s, (-30.0, 0.0, 30.0), (1, 0, 0), (0, 0, -1), rows=64, cols=64, instance=1000,
                    extra={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]})
    save(ds, os.path.join(d, "SCOUT"))

    s = Series("two echoes")
    d = mkdir("ramp/echoes")
    for e in (1, 2):
        for k, p in enumerate(axial_positions(10, 2.0)):
            ds = ramp_slice(s, p, (1, 0, 0), (0, 1, 0), instance=e * 100 + k,
                            extra={"EchoNumbers": str(e), "EchoTime": str(10 * e)},
                            pixel_fn=lambda q, e=e: ramp(q) + 100 * (e - 1))
            save(ds, os.path.join(d, f"E{e}S{k:03d}"))

    s = Series("three time points")
    d = mkdir("ramp/time")
    for t in (1, 2, 3):
        for k, p in enumerate(axial_positions(8, 2.0)):
            ds = ramp_slice(s, p, (1, 0, 0), (0, 1, 0), instance=t * 100 + k,
                            extra={"TemporalPositionIdentifier": str(t), "NumberOfTemporalPositions": "3"},
                            pixel_fn=lambda q, t=t: ramp(q) + 100 * (t - 1))
            save(ds, os.path.join(d, f"T{t}S{k:03d}"))

    s = Series("duplicate slice")
    d = write_stack("ramp/duplicates", s, axial_positions(10, 2.0))
    ds = ramp_slice(s, axial_positions(10, 2.0)[5], (1, 0, 0), (0, 1, 0), instance=50)
    save(ds, os.path.join(d, "DUP"))

    s = Series("acquisition per slice")
    write_stack("ramp/acquisition-per-slice", s, axial_positions(10, 2.0),
                extra_fn=lambda k: {"AcquisitionNumber": str(k + 1)})


def build_enhanced():
    """Enhanced CT (per-frame functional groups) holding the same ramp as a classic series."""
    s = Series("enhanced")
    positions = axial_positions(12, 2.5)
    rng.shuffle(positions)  # frames need not be stored in order
    rows, cols, spacing = 32, 40, (2.0, 1.5)
    ds = base_dataset(sop_class="1.2.840.10008.5.1.4.1.1.2.1")
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = s.uid
    ds.SeriesNumber = 20
    ds.SeriesDescription = "enhanced"
    ds.FrameOfReferenceUID = s.frame_of_reference
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.Rows, ds.Columns = rows, cols
    ds.NumberOfFrames = len(positions)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [str(spacing[0]), str(spacing[1])]
    pm.SliceThickness = "2.5"
    shared.PixelMeasuresSequence = Sequence([pm])
    po = Dataset()
    po.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    shared.PlaneOrientationSequence = Sequence([po])
    pvt = Dataset()
    pvt.RescaleIntercept = "-1024"
    pvt.RescaleSlope = "1"
    pvt.RescaleType = "HU"
    shared.PixelValueTransformationSequence = Sequence([pvt])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per = []
    frames = []
    j, i = np.mgrid[0:rows, 0:cols]
    for k, p in enumerate(positions):
        f = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [f"{v:.6f}" for v in p]
        f.PlanePositionSequence = Sequence([pp])
        fc = Dataset()
        fc.InStackPositionNumber = k + 1
        f.FrameContentSequence = Sequence([fc])
        per.append(f)
        q = np.asarray(p)[None, None, :] + i[..., None] * spacing[1] * np.array([1, 0, 0]) + j[..., None] * spacing[0] * np.array([0, 1, 0])
        frames.append((ramp(q) + 1024).astype("<u2"))  # stored = HU + 1024
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    ds.PixelData = np.stack(frames).tobytes()
    save(ds, os.path.join(mkdir("enhanced"), "ENHANCED_CT.dcm"))


def build_legacy_multiframe():
    """Legacy (not enhanced) multi-frame CT: one position, frames stacked by SpacingBetweenSlices.
    `negative-spacing.dcm` stacks its frames against the normal (a negative step, as some
    vendors write it); both hold the ramp of the frames' true positions."""
    d = mkdir("legacy-mf")
    for name, step in (("positive-spacing.dcm", 2.5), ("negative-spacing.dcm", -2.5)):
        s = Series("legacy multi-frame " + name)
        first = ramp_slice(s, (-30.0, -25.0, -20.0), (1, 0, 0), (0, 1, 0))
        frames = []
        for f in range(6):
            one = ramp_slice(s, (-30.0, -25.0, -20.0 + step * f), (1, 0, 0), (0, 1, 0))
            frames.append(one.PixelData)
        first.NumberOfFrames = 6
        first.SpacingBetweenSlices = f"{step:.1f}"
        first.PixelData = b"".join(frames)
        save(first, os.path.join(d, name))


def build_cine():
    ds = base_dataset(sop_class="1.2.840.10008.5.1.4.1.1.12.1", modality="XA")
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = uid()
    ds.SeriesNumber = 30
    ds.Rows, ds.Columns = 24, 20
    ds.NumberOfFrames = 5
    ds.FrameTime = "33.3"
    ds.FrameIncrementPointer = pydicom.tag.Tag(0x0018, 0x1063)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.ImagerPixelSpacing = ["0.2", "0.25"]
    frames = np.stack([np.full((24, 20), 10 * (f + 1), np.uint8) for f in range(5)])
    frames[:, 0, 0] = 255
    ds.PixelData = frames.tobytes()
    save(ds, os.path.join(mkdir("cine"), "XA_CINE.dcm"))


def build_without_window_tags():
    """Images whose headers give no window (the viewer must find one from the data): an
    8-bit JPEG-baseline XA cine and a slightly oblique 16-bit MR series."""
    d = mkdir("no-window")
    ds = base_dataset(sop_class="1.2.840.10008.5.1.4.1.1.12.1", modality="XA")
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = uid()
    ds.SeriesNumber = 40
    ds.Rows, ds.Columns = 128, 128
    ds.NumberOfFrames = 24
    ds.FrameTime = "66.7"
    ds.FrameIncrementPointer = pydicom.tag.Tag(0x0018, 0x1063)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    y, x = np.mgrid[0:128, 0:128]
    frames = []
    for f in range(24):  # a vessel-like bright band moving over a mid-grey background
        band = np.exp(-((x - 20 - 3 * f) ** 2) / 60.0)
        frames.append(np.clip(90 + 30 * np.sin(y / 9.0) + 120 * band, 0, 255).astype(np.uint8))
    ds.PixelData = np.stack(frames).tobytes()
    raw = os.path.join(d, "xa-raw.dcm")
    save(ds, raw)
    run(["dcmcjpeg", "+eb", raw, os.path.join(d, "XA_8bit_baseline.dcm")])
    os.remove(raw)

    s = Series("oblique MR without window", number=41)
    drift = math.radians(0.4)
    m = mkdir("no-window", "mr-oblique")
    for k in range(12):
        ds = ramp_slice(s, (-60.0, -60.0 + 4.0 * k * math.tan(drift), -20.0 + 4.0 * k), (1, 0, 0), (0, 1, 0),
                        rows=64, cols=64, spacing=(2.0, 2.0), instance=k + 1,
                        pixel_fn=lambda p: np.clip(800 - 0.15 * ((p[..., 0] + 0) ** 2 + (p[..., 1] + 0) ** 2), 0, None))
        ds.Modality = "MR"
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        ds.PixelRepresentation = 0
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
        del ds.RescaleIntercept
        del ds.RescaleSlope
        save(ds, os.path.join(m, f"MR{k:03d}"))


def build_photometric():
    d = mkdir("photometric")
    rows, cols = 16, 20
    v = (np.arange(rows * cols).reshape(rows, cols) * 13 % 4096).astype(np.uint16)

    def image(photometric, pixels, bits=12, **extra):
        ds = base_dataset(sop_class="1.2.840.10008.5.1.4.1.1.1.1", modality="DX")
        ds.StudyInstanceUID = STUDY_UID
        ds.SeriesInstanceUID = uid()
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1 if photometric.startswith("MONO") or photometric == "PALETTE COLOR" else 3
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = 16 if bits > 8 else 8
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
        ds.ImagerPixelSpacing = ["0.15", "0.15"]
        ds.PixelData = pixels.tobytes()
        for k, val in extra.items():
            setattr(ds, k, val)
        return ds

    save(image("MONOCHROME2", v), os.path.join(d, "mono2.dcm"))
    save(image("MONOCHROME1", (4095 - v).astype(np.uint16), WindowCenter="1000", WindowWidth="500"),
         os.path.join(d, "mono1.dcm"))
    # 12 stored bits in the high end of the 16 allocated, overlay garbage in the low bits.
    hb = image("MONOCHROME2", ((v << 4) | 0x5).astype(np.uint16))
    hb.HighBit = 15
    save(hb, os.path.join(d, "highbit.dcm"))

    idx = (np.arange(rows * cols).reshape(rows, cols) % 256).astype(np.uint8)
    lut = np.arange(256, dtype=np.uint16)
    pal = image("PALETTE COLOR", idx, bits=8)
    for c, data in (("Red", lut * 256), ("Green", (255 - lut) * 256), ("Blue", (lut // 2) * 256)):
        setattr(pal, f"{c}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(pal, f"{c}PaletteColorLookupTableData", data.astype("<u2").tobytes())
    save(pal, os.path.join(d, "palette.dcm"))

    rgb = np.stack([idx, 255 - idx, idx // 2], axis=-1).astype(np.uint8)
    save(image("RGB", rgb, bits=8, PlanarConfiguration=0), os.path.join(d, "rgb-interleaved.dcm"))
    save(image("RGB", np.ascontiguousarray(rgb.transpose(2, 0, 1)), bits=8, PlanarConfiguration=1),
         os.path.join(d, "rgb-planar.dcm"))


def build_bad():
    d = mkdir("bad")
    files = sorted(os.listdir(SAMPLE))
    good = open(os.path.join(SAMPLE, files[0]), "rb").read()
    shutil.copy(os.path.join(SAMPLE, files[0]), os.path.join(d, "good.dcm"))
    open(os.path.join(d, "zero-bytes.dcm"), "wb").close()
    open(os.path.join(d, "random-bytes.dcm"), "wb").write(bytes(rng.randrange(256) for _ in range(5000)))
    open(os.path.join(d, "notes.txt"), "w").write("not an image\n")
    open(os.path.join(d, "truncated-header.dcm"), "wb").write(good[:700])
    open(os.path.join(d, "truncated-pixels.dcm"), "wb").write(good[: len(good) - 200000])
    ref = pydicom.dcmread(os.path.join(SAMPLE, files[0]))

    def variant(name, fn):
        ds = pydicom.dcmread(os.path.join(SAMPLE, files[0]))
        ds.SOPInstanceUID = uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = uid()
        fn(ds)
        ds.save_as(os.path.join(d, name), write_like_original=False)

    variant("no-pixel-data.dcm", lambda ds: delattr(ds, "PixelData"))
    variant("size-lie.dcm", lambda ds: setattr(ds, "Rows", 4096))
    variant("bits-lie.dcm", lambda ds: setattr(ds, "BitsAllocated", 32))
    variant("bits-stored-lie.dcm", lambda ds: setattr(ds, "BitsStored", 20))
    variant("frames-lie.dcm", lambda ds: setattr(ds, "NumberOfFrames", "500"))
    variant("nan-orientation.dcm", lambda ds: setattr(ds, "ImageOrientationPatient", ["NaN", "0", "0", "0", "1", "0"]))
    variant("degenerate-orientation.dcm", lambda ds: setattr(ds, "ImageOrientationPatient", ["1", "0", "0", "1", "0", "0"]))
    variant("zero-spacing.dcm", lambda ds: setattr(ds, "PixelSpacing", ["0", "0.3"]))
    variant("inf-position.dcm", lambda ds: setattr(ds, "ImagePositionPatient", ["inf", "0", "0"]))
    variant("zero-rows.dcm", lambda ds: setattr(ds, "Rows", 0))

    # An element whose length runs far past the end of the file.
    i = good.index(b"\x10\x00\x10\x00PN")  # (0010,0010) PatientName, explicit VR
    bad = bytearray(good)
    bad[i + 6:i + 8] = b"\xf0\xff"
    open(os.path.join(d, "absurd-length.dcm"), "wb").write(bytes(bad[: i + 4000]))
    # A 4 GB length in an explicit-length sequence item.
    j = good.index(b"\x08\x00\x10\x11SQ")
    bad = bytearray(good)
    bad[j + 8:j + 12] = b"\xf0\xff\xff\xff"
    open(os.path.join(d, "absurd-sequence-length.dcm"), "wb").write(bytes(bad))

    # Sequences nested 20000 deep (undefined lengths), then a valid image.
    meta = good[:good.index(b"\x08\x00")]  # preamble + meta group (ends before group 0008)
    depth = 20000
    nest = (b"\x08\x00\x10\x11SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff") * depth
    close = (b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00") * depth
    open(os.path.join(d, "deep-nesting.dcm"), "wb").write(meta + nest + close + good[len(meta):])


def build_pydicom_copies():
    d = mkdir("pydicom")
    for name in ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
                 "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "JPEG2000.dcm", "JPGExtended.dcm",
                 "SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_2frame.dcm", "SC_rgb_jpeg_dcmtk.dcm",
                 "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_gdcm_KY.dcm", "SC_ybr_full_422_uncompressed.dcm",
                 "ExplVR_BigEnd.dcm", "image_dfl.dcm", "rtdose.dcm", "rtdose_rle.dcm", "693_J2KI.dcm",
                 "liver_1frame.dcm", "test-SR.dcm", "rtplan.dcm", "MR_truncated.dcm", "no_meta.dcm"]:
        src = os.path.join(PYDICOM_FILES, name)
        if not os.path.exists(src):  # the tests must not pass on a smaller corpus
            raise SystemExit(f"make_corpus: {src} missing (Debian package python3-pydicom)")
        shutil.copy(src, os.path.join(d, name))
    dd = os.path.join(PYDICOM_FILES, "dicomdirtests")
    if not os.path.isdir(dd):
        raise SystemExit(f"make_corpus: {dd} missing (Debian package python3-pydicom)")
    target = os.path.join(OUT, "dicomdir")
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    shutil.copy(os.path.join(dd, "DICOMDIR"), target)
    for sub in os.listdir(dd):
        if os.path.isdir(os.path.join(dd, sub)):
            shutil.copytree(os.path.join(dd, sub), os.path.join(target, sub))


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    build_transfer_syntaxes()
    build_ramp_cases()
    build_measurement_phantom()
    build_odd_size()
    build_enhanced()
    build_legacy_multiframe()
    build_cine()
    build_without_window_tags()
    build_photometric()
    build_bad()
    build_pydicom_copies()
    open(os.path.join(OUT, "COMPLETE"), "w").write("ok\n")
