/* mod_ytkafka's page: every string from the server is set with
 * textContent, never as HTML. */
(function () {
    "use strict";
    var base = document.documentElement.dataset.base || "";
    var POLL_MS = 1000, POLL_MAX = 120;
    var nextCursor = null;

    function el(tag, text, cls) {
        var e = document.createElement(tag);
        if (text !== undefined && text !== null) { e.textContent = String(text); }
        if (cls) { e.className = cls; }
        return e;
    }

    function fmtDuration(s) {
        if (s === null || s === undefined) { return ""; }
        var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, x = s % 60;
        return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" +
            String(x).padStart(2, "0");
    }

    function meta(v) { return (v && v.metadata) || {}; }

    function card(id) {
        var c = document.getElementById("card-" + id);
        if (!c) {
            c = el("div", null, "card");
            c.id = "card-" + id;
            document.getElementById("results").prepend(c);
        }
        return c;
    }

    function renderVideo(v) {
        var c = card(v.video_id), m = meta(v), dl, rows, i, kw, t, tr;
        c.replaceChildren();
        c.dataset.status = v.status;
        c.appendChild(el("h3", v.title || v.video_id, "title"));
        if (v.status !== "ok") {
            c.appendChild(el("p", v.status + ": " + (v.last_error || ""), "reason"));
            return;
        }
        var img = document.createElement("img");
        img.alt = "";
        img.src = "https://i.ytimg.com/vi/" + encodeURIComponent(v.video_id) + "/hqdefault.jpg";
        c.appendChild(img);
        dl = el("dl");
        rows = [["Channel", v.author_name], ["Duration", fmtDuration(v.duration_seconds)],
                ["Views", v.view_count === null ? "" : Number(v.view_count).toLocaleString()],
                ["Published", v.publish_date], ["Video id", v.video_id]];
        for (i = 0; i < rows.length; i++) {
            dl.appendChild(el("dt", rows[i][0]));
            dl.appendChild(el("dd", rows[i][1] || ""));
        }
        c.appendChild(dl);
        kw = el("p", null, "kw");
        (m.keywords || []).forEach(function (k) { kw.appendChild(el("span", k)); });
        c.appendChild(kw);
        var formats = m.formats || m.stream_formats || [];
        if (formats.length) {
            var wrap = el("div", null, "formats");
            t = el("table");
            var cols = ["itag", "mime_type", "quality_label", "width", "height", "bitrate"];
            tr = el("tr");
            cols.forEach(function (k) { tr.appendChild(el("th", k)); });
            t.appendChild(tr);
            formats.forEach(function (f) {
                tr = el("tr");
                cols.forEach(function (k) {
                    var val = f[k];
                    if (val === undefined) { val = f[k.replace(/_(\w)/g, function (a, b) { return b.toUpperCase(); })]; }
                    tr.appendChild(el("td", val === undefined ? "" : val));
                });
                t.appendChild(tr);
            });
            wrap.appendChild(t);
            c.appendChild(wrap);
        }
    }

    function poll(id, n) {
        fetch(base + "/links/" + encodeURIComponent(id), {cache: "no-cache"})
            .then(function (r) {
                if (r.status === 200) { return r.json(); }
                return null;
            })
            .then(function (v) {
                if (v && (v.status === "ok" || v.status === "unavailable" || v.status === "error")) {
                    renderVideo(v);
                } else if (n < POLL_MAX) {
                    setTimeout(function () { poll(id, n + 1); }, POLL_MS);
                }
            })
            .catch(function () {
                if (n < POLL_MAX) { setTimeout(function () { poll(id, n + 1); }, POLL_MS); }
            });
    }

    function pending(id) {
        var c = card(id);
        c.replaceChildren(el("h3", id, "title"), el("p", "waiting for the result..."));
    }

    function showAnswers(j, status) {
        var ul = document.getElementById("answers");
        ul.replaceChildren();
        if (j && j.error && !j.links) {
            ul.appendChild(el("li", "rejected: " + j.error.message, "rejected"));
            return;
        }
        ((j && j.links) || []).forEach(function (l) {
            var ok = l.video_id && (l.status === "delivered" || l.status === "queued");
            var li;
            if (ok) {
                li = el("li", "accepted: " + l.video_id + " (" + (l.url || "") + ")", "accepted");
                pending(l.video_id);
                poll(l.video_id, 0);
            } else {
                li = el("li", (l.status || "rejected") + ": " + (l.url || "") + " - " +
                        ((l.error && l.error.message) || "rejected"), "rejected");
            }
            ul.appendChild(li);
        });
        document.getElementById("send-status").textContent = "HTTP " + status;
    }

    document.getElementById("send-form").addEventListener("submit", function (ev) {
        ev.preventDefault();
        var links = document.getElementById("links").value.split(/\n/)
            .map(function (s) { return s.trim(); }).filter(Boolean);
        document.getElementById("send-status").textContent = "sending...";
        fetch(base + "/links/send-message", {
            method: "POST", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({links: links})
        }).then(function (r) {
            return r.json().then(function (j) { showAnswers(j, r.status); },
                                 function () { showAnswers(null, r.status); });
        }).catch(function (e) {
            document.getElementById("send-status").textContent = "failed: " + e;
        });
    });

    function recent(more) {
        var url = base + "/links?limit=20" + (more && nextCursor ? "&before=" + encodeURIComponent(nextCursor) : "");
        fetch(url, {cache: "no-cache"}).then(function (r) { return r.json(); }).then(function (j) {
            var ul = document.getElementById("recent");
            if (!more) { ul.replaceChildren(); }
            (j.videos || []).forEach(function (v) {
                var li = el("li");
                li.appendChild(el("strong", v.title || v.video_id));
                li.appendChild(el("span", " - " + (v.author_name || "") + " [" + v.status + "] " + v.updated_at));
                li.addEventListener("click", function () { poll(v.video_id, POLL_MAX); });
                ul.appendChild(li);
            });
            nextCursor = j.next || null;
            document.getElementById("more").hidden = !nextCursor;
        }).catch(function () {});
    }
    document.getElementById("refresh").addEventListener("click", function () { recent(false); });
    document.getElementById("more").addEventListener("click", function () { recent(true); });
    recent(false);
}());
