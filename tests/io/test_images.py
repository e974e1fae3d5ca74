import numpy as np
import pytest
import imageio.v3 as iio
import skimage.io

from chm.io.images import as_float_image, read_image, read_mask


@pytest.fixture
def gray_u8():
    return (np.random.default_rng(0).random((20, 30)) * 255).astype(np.uint8)


def test_png_round_trip_uint8(tmp_path, gray_u8):
    path = tmp_path / "a.png"
    skimage.io.imsave(path, gray_u8, check_contrast=False)
    img = read_image(path)
    assert img.dtype == np.float64 and img.shape == (20, 30)
    np.testing.assert_array_equal(img, gray_u8 / 255.0)


def test_png_round_trip_uint16(tmp_path):
    arr = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    path = tmp_path / "b.png"
    skimage.io.imsave(path, arr, check_contrast=False)
    np.testing.assert_array_equal(read_image(str(path)), arr / 65535.0)


def test_rgb_and_rgba_stay_colour_gray_rgb_becomes_gray(tmp_path):
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 1] = 255
    rgba = np.concatenate([rgb, np.full((4, 5, 1), 7, np.uint8)], axis=2)
    skimage.io.imsave(tmp_path / "rgb.png", rgb, check_contrast=False)
    skimage.io.imsave(tmp_path / "rgba.png", rgba, check_contrast=False)
    for name in ("rgb.png", "rgba.png"):
        img = read_image(tmp_path / name)
        assert img.shape == (4, 5, 3)
        np.testing.assert_array_equal(img, rgb / 255.0)
    # Gray saved as RGB (equal channels) reads as gray.
    skimage.io.imsave(tmp_path / "g.png", np.repeat(rgb[..., 1:2], 3, axis=2), check_contrast=False)
    assert read_image(tmp_path / "g.png").shape == (4, 5)


def test_read_mask_thresholds_jpeg(tmp_path):
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[5:21, 7:26] = 255  # not aligned to JPEG's 8x8 blocks
    path = tmp_path / "m.jpg"
    iio.imwrite(path, mask, quality=75)
    raw = iio.imread(path)
    assert set(np.unique(raw)) - {0, 255}, "JPEG should add noise for this test"
    out = read_mask(path)
    assert out.dtype == bool
    np.testing.assert_array_equal(out, mask > 0)
    assert read_mask(path, threshold=255).sum() == 0


def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(path)
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_mask(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "junk.png"
    path.write_bytes(np.random.default_rng(1).bytes(600))
    with pytest.raises(ValueError, match=r"cannot read image '.*junk.png': "):
        read_image(path)


def test_truncated_jpeg(tmp_path, gray_u8):
    path = tmp_path / "t.jpg"
    skimage.io.imsave(path, gray_u8)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cannot read image '.*t.jpg'"):
        read_image(path)
    with pytest.raises(ValueError, match=r"cannot read image '.*t.jpg'"):
        read_mask(path)


def test_directory_and_empty_file(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        read_image(tmp_path)
    empty = tmp_path / "e.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot read image"):
        read_image(empty)


def test_unsupported_pixel_type_in_file(tmp_path):
    path = tmp_path / "f.tif"
    iio.imwrite(path, np.full((4, 5), 2.5, dtype=np.float32))
    with pytest.raises(ValueError, match=r"cannot read image .*\[0, 1\]"):
        read_image(path)


# --- as_float_image --------------------------------------------------------


@pytest.mark.parametrize(
    "arr, expected",
    [
        (np.array([[0, 255]], np.uint8), [[0.0, 1.0]]),
        (np.array([[0, 65535]], np.uint16), [[0.0, 1.0]]),
        (np.array([[False, True]]), [[0.0, 1.0]]),
        (np.array([[0.25, 1.0]], np.float32), [[0.25, 1.0]]),
    ],
)
def test_as_float_image_dtypes(arr, expected):
    out = as_float_image(arr)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, expected)


def test_as_float_image_copies():
    arr = np.zeros((2, 2))
    out = as_float_image(arr)
    out[0, 0] = 1
    assert arr[0, 0] == 0


def test_as_float_image_rgb_and_channels():
    from chm.io.images import to_channels

    rgb = np.ones((3, 4, 3), np.uint8) * 255
    out = as_float_image(rgb)
    assert out.shape == (3, 4, 3) and out.dtype == np.float64
    np.testing.assert_allclose(to_channels(out, 1), 1.0)
    assert to_channels(out, 1).shape == (3, 4) and to_channels(out, 1).max() <= 1.0
    np.testing.assert_array_equal(to_channels(out[..., 0], 3), out)


@pytest.mark.parametrize(
    "arr, err, msg",
    [
        (np.array([[np.nan, 0.5]]), ValueError, "NaN"),
        (np.array([[np.inf, 0.5]]), ValueError, "NaN"),
        (np.array([[1.5, 0.5]]), ValueError, r"\[0, 1\]"),
        (np.array([[-0.1, 0.5]]), ValueError, r"\[0, 1\]"),
        (np.array([[1, 2]], np.int32), TypeError, "int32"),
        (np.array([["a"]]), TypeError, "dtype"),
        (np.zeros((0, 3)), ValueError, "empty"),
        (np.zeros(5), ValueError, "shape"),
        (np.zeros((3, 3, 2)), ValueError, "shape"),
        (np.zeros((3, 3, 4)), ValueError, "alpha"),
    ],
)
def test_as_float_image_rejects(arr, err, msg):
    with pytest.raises(err, match=msg):
        as_float_image(arr)


def test_as_float_image_names_the_argument():
    with pytest.raises(ValueError, match="^probability map "):
        as_float_image(np.array([[2.0]]), name="probability map")


def test_gray_alpha_and_palette(tmp_path):
    from PIL import Image

    a = (np.arange(12).reshape(3, 4) * 20).astype(np.uint8)
    Image.fromarray(a).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(a).convert("P").save(tmp_path / "p.png")
    for name in ("la.png", "p.png"):
        np.testing.assert_allclose(read_image(tmp_path / name), a / 255.0, atol=1e-12)


def test_one_bit_mask(tmp_path):
    from PIL import Image

    m = np.array([[True, False], [False, True]])
    Image.fromarray(m).save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "b.png"), m)
