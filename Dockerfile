# mod_ytkafka container images.
#
#   docker build --target httpd    -t ytkafka-httpd .     # Apache httpd + module, :8080
#   docker build --target consumer -t ytkafka-consumer .  # ytkafka-consumer
#
# or `docker compose up --build` (docker-compose.yml). The build stage
# installs with dev/deps and builds with dev/build, the same two scripts that
# dev/test runs, so the image holds what the tests tested. The runtime stages
# install with `dev/deps runtime` and carry no compiler or headers.

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------- build --
FROM ${DEBIAN_IMAGE} AS build
SHELL ["/bin/bash", "-eo", "pipefail", "-c"]
WORKDIR /src
# The dependencies first, so that a source change reuses this layer.
COPY dev/deps dev/deps
RUN dev/deps build \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN dev/build /src/build --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
    && make -C /src/build -s install DESTDIR=/staging \
    && test -f /staging/usr/lib/apache2/modules/mod_ytkafka.so \
    && test -x /staging/usr/bin/ytkafka-consumer \
    && test -f /staging/etc/ytkafka/ytkafka.conf

# -------------------------------------------------------------- runtime --
# Shared by both images: runtime libraries, and the group ytkafka that owns
# /var/lib/ytkafka, where the consumer writes the SQLite database that httpd
# reads (a named volume takes its owner and mode from here).
FROM ${DEBIAN_IMAGE} AS runtime
SHELL ["/bin/bash", "-eo", "pipefail", "-c"]
COPY dev/deps /tmp/dev/deps
RUN /tmp/dev/deps runtime \
    && rm -rf /tmp/dev /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ytkafka \
    && install -d -o 10001 -g ytkafka -m 2775 /var/lib/ytkafka

# ---------------------------------------------------------------- httpd --
FROM runtime AS httpd
COPY --from=build /staging/usr/lib/apache2/modules/mod_ytkafka.so /usr/lib/apache2/modules/
COPY --from=build /staging/etc/ytkafka/ /etc/ytkafka/
COPY conf/ytkafka-container.conf /etc/apache2/conf-available/
RUN cp /etc/ytkafka/ytkafka.load /etc/ytkafka/ytkafka.conf /etc/apache2/mods-available/ \
    && a2enmod -q ytkafka \
    && a2enconf -q ytkafka-container \
    && a2dissite -q 000-default \
    && a2disconf -q other-vhosts-access-log \
    && echo '# Listen: see conf-available/ytkafka-container.conf' > /etc/apache2/ports.conf \
    && usermod -a -G ytkafka www-data \
    && install -d -o www-data -g www-data /var/run/apache2 /var/lock/apache2 /var/log/apache2
# What Debian's apache2ctl would read from /etc/apache2/envvars: httpd runs
# directly as PID 1, so that docker stop reaches it.
ENV APACHE_RUN_USER=www-data \
    APACHE_RUN_GROUP=www-data \
    APACHE_RUN_DIR=/var/run/apache2 \
    APACHE_PID_FILE=/var/run/apache2/apache2.pid \
    APACHE_LOCK_DIR=/var/lock/apache2 \
    APACHE_LOG_DIR=/var/log/apache2 \
    LANG=C
# KAFKA_BROKERS has no default here: without it httpd refuses to start and
# says so. docker-compose.yml sets it.
USER www-data
EXPOSE 8080
STOPSIGNAL SIGWINCH
CMD ["/usr/sbin/apache2", "-D", "FOREGROUND"]

# ------------------------------------------------------------- consumer --
FROM runtime AS consumer
COPY --from=build /staging/usr/bin/ytkafka-consumer /usr/bin/
COPY --from=build /staging/etc/ytkafka/ /etc/ytkafka/
RUN useradd --system --uid 10001 --gid ytkafka --home-dir /var/lib/ytkafka \
        --no-create-home --shell /usr/sbin/nologin ytkafka
USER ytkafka
WORKDIR /var/lib/ytkafka
ENV YTK_DB=sqlite3:/var/lib/ytkafka/videos.db
# The database files stay writable for group ytkafka, to which httpd's
# www-data belongs: see conf/ytkafka-consumer-entrypoint.
COPY conf/ytkafka-consumer-entrypoint /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/ytkafka-consumer-entrypoint"]
CMD ["-F", "/etc/ytkafka/ytkafka-consumer.conf"]
