"""With YTK_HTTPD_ASAN=1 (as ./dev/test runs the module suite), every httpd
child really runs the AddressSanitizer build of the module with the
sanitizer runtime loaded, and reports go where the fixture looks."""
import pytest

import httpd as H
from httpd import VIDEO, httpd_factory, send_config  # noqa: F401

pytestmark = pytest.mark.skipif(not H.ASAN, reason="YTK_HTTPD_ASAN is not set")


def test_children_run_the_asan_module(httpd_factory, kafka):
    h = httpd_factory()
    h.write_config(send_config(kafka.bootstrap, kafka.new_topic("asan")))
    h.start()
    assert h.post_json("/send", {"links": "https://youtu.be/" + VIDEO}).status == 201
    kids = h.children()
    assert kids
    for pid in kids:
        with open("/proc/%d/maps" % pid) as f:
            maps = f.read()
        assert H.module_path() in maps and H.ASAN_BUILD in H.module_path()
        assert "libasan.so" in maps
    with open("/proc/%d/environ" % kids[0], "rb") as f:
        env = f.read().decode(errors="replace")
    assert "log_path=%s/asan" % h.asan_dir in env
    assert h.sanitizer_reports() == []
