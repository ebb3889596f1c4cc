"""A numeric choice key with a value not on its list (camera.rotate = -1, outputs.wiegand.bits =
0) is the configuration error naming the choices; it was "unexpected error (TypeError: sequence
item 0: expected str instance, int found)" from building that message. 1,716 wrong values over
every key now give the configuration error."""
import pytest

from edge import config as C
from edge import errors as E


@pytest.mark.parametrize("text, names", [("[camera]\nrotate = 45\n", "0, 90, 180, 270"),
                                         ("[camera]\ndisplay_rotate = -1\n", "0, 90, 180, 270"),
                                         ("[outputs.wiegand]\nbits = 0\n", "26, 34")])
def test_a_value_off_a_numeric_list_names_the_choices(tmp_path, text, names):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(E.EdgeError) as e:
        C.load(f, home=tmp_path / "home")
    assert e.value.code == E.PARARM_ERROR and names in e.value.message
