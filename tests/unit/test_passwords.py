"""TCP MD5 session passwords: validated, rendered on both sides, refused
when ExaBGP's syntax or the kernel's key size could not carry them."""

import pytest

from testbed import Topology
from testbed.model.addressing import plan
from testbed.errors import TopologyError
from testbed.routers.exabgp_config import config_tree, render

ARGV = ["/venv/bin/python", "-m", "testbed.agent", "/run/testbed/x/A/agent.json"]


def pair(password):
    topo = Topology("pw")
    topo.add_as(64500, "T")
    topo.add_as(64501, "A")
    topo.transit("T", "A", password=password)
    return topo


def test_password_is_rendered_on_both_sides_only_for_that_session():
    p = plan(pair("s3cr3t!").validate())
    for name in ("T", "A"):
        text = render(config_tree(p.routers[name], 9, ARGV))
        assert text.count('md5-password "s3cr3t!";') == 1, text
    unprotected = plan(pair(None).validate())
    assert "md5-password" not in render(config_tree(unprotected.routers["A"], 9, ARGV))


@pytest.mark.parametrize("password", ["", "two words", 'quo"te', "it's", "semi;colon", "back\\slash",
                                      "x" * 81, 1234, "tab\there"])
def test_bad_password_is_refused_with_where(password):
    with pytest.raises(TopologyError) as info:
        pair(password).validate()
    message = str(info.value)
    assert "password must be 1-80 printable characters" in message
    assert "test_passwords.py:" in message
