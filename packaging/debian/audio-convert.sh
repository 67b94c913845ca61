#!/bin/sh
# audio-convert: the command of the audio-convert package (the service runs the same file).
exec /usr/bin/node /usr/lib/audio-convert/dist/cli.js "$@"
