#!/bin/bash
# /opt/kafka/bin/kafka-topics.sh of the stand-in image.
exec java -Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile=/opt/kafka/config/log4j2-tools.properties \
    -cp '/opt/kafka/libs/*' org.apache.kafka.tools.TopicCommand "$@"
