/*
 * audio-convert -- the Convert() dialplan application
 *
 * Copyright (C) 2026, the audio-convert authors
 *
 * This program is free software, distributed under the terms of
 * the GNU General Public License Version 2. See the LICENSE file
 * at the top of the Asterisk source tree.
 */

/*! \file
 *
 * \brief Convert() -- decode a raw GSM 06.10 recording into a WAV file, in process
 *
 * The call-auditing bridge (audio-convert) originates one call per recording into a dialplan
 * that calls Convert(). The conversion runs on the channel thread, with Asterisk's own GSM
 * decoder (codec_gsm, through the translator core): no shell, no process per conversion.
 *
 * What the application guarantees, because a crash or a hang here takes every call on the
 * host down:
 * - the input is opened only if it is a regular file (lstat first, then open with O_NOFOLLOW
 *   and O_NONBLOCK, then fstat of the same descriptor must be the same regular file): a FIFO,
 *   a device, a directory or a symbolic link is refused without blocking;
 * - exactly the whole 33-byte frames present when the input was opened are decoded, and each
 *   must yield 160 samples: a corrupt frame fails the conversion, a cut last frame is dropped;
 * - the output is written to a temporary file in the output's own directory and renamed onto
 *   the output only once every byte is written and the file closed without error, so the
 *   output name never holds a partial WAV; on any failure the temporary file is removed;
 * - every outcome, success or failure, is reported in channel variables (CONVERT_STATUS,
 *   CONVERT_DETAIL, CONVERT_REASON, CONVERT_BYTES, CONVERT_FRAMES); the application itself
 *   returns 0 (the dialplan goes on to report), or -1 only when the channel hung up.
 *
 * \author audio-convert
 *
 * \ingroup applications
 */

/*** MODULEINFO
	<depend>codec_gsm</depend>
	<support_level>extended</support_level>
 ***/

#include "asterisk.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "asterisk/app.h"
#include "asterisk/channel.h"
#include "asterisk/format_cache.h"
#include "asterisk/frame.h"
#include "asterisk/logger.h"
#include "asterisk/module.h"
#include "asterisk/pbx.h"
#include "asterisk/strings.h"
#include "asterisk/translate.h"
#include "asterisk/utils.h"

/*** DOCUMENTATION
	<application name="Convert" language="en_US">
		<since>
			<version>22.0.0</version>
		</since>
		<synopsis>
			Convert a raw GSM recording into a WAV file, in process.
		</synopsis>
		<syntax>
			<parameter name="input" required="true">
				<para>Absolute path of the raw GSM 06.10 recording (33-byte frames, as
				<literal>MixMonitor</literal> writes with the <literal>gsm</literal> format).</para>
			</parameter>
			<parameter name="output" required="true">
				<para>Absolute path of the WAV file to create (PCM, 8 kHz, mono, 16-bit). It must
				end in <literal>.wav</literal>. An existing file is replaced atomically.</para>
			</parameter>
			<parameter name="options">
				<optionlist>
					<option name="d">
						<para>Create the output's missing directories (mode 2775).</para>
					</option>
				</optionlist>
			</parameter>
		</syntax>
		<description>
			<para>Decodes every whole frame of <replaceable>input</replaceable> with Asterisk's
			GSM codec and writes <replaceable>output</replaceable> through a temporary file in
			the same directory, renamed into place only when complete. The input must be a
			regular file: a FIFO, a device, a directory or a symbolic link is refused without
			being read. No process is started.</para>
			<para>The outcome is returned in channel variables:</para>
			<variablelist>
				<variable name="CONVERT_STATUS">
					<value name="SUCCESS">The output was written and renamed into place.</value>
					<value name="FAILED">Nothing was written at the output name; see CONVERT_DETAIL.</value>
				</variable>
				<variable name="CONVERT_DETAIL">
					<para>One word for programs: <literal>converted</literal>, <literal>invalid-arguments</literal>,
					<literal>input-missing</literal>, <literal>input-not-regular</literal>,
					<literal>input-unreadable</literal>, <literal>input-empty</literal>,
					<literal>input-too-large</literal>, <literal>input-corrupt</literal>,
					<literal>input-changed</literal>, <literal>output-dir-missing</literal>,
					<literal>output-dir-failed</literal>, <literal>output-failed</literal>,
					<literal>no-codec</literal> or <literal>hangup</literal>.</para>
				</variable>
				<variable name="CONVERT_REASON">
					<para>The same for a person, with the system's error text (no commas).</para>
				</variable>
				<variable name="CONVERT_BYTES">
					<para>Size of the output in bytes (0 on failure).</para>
				</variable>
				<variable name="CONVERT_FRAMES">
					<para>GSM frames decoded (0 on failure).</para>
				</variable>
			</variablelist>
		</description>
	</application>
 ***/

static const char app[] = "Convert";

#define GSM_FRAME_BYTES 33
#define GSM_FRAME_SAMPLES 160
/*! Frames per translation: codec_gsm buffers 8000 samples (50 frames) at most, and must never
 * see a multiple of 65 bytes, which it takes for Microsoft's WAV49 framing. */
#define FRAMES_PER_BATCH ((size_t) 50)
#define WAV_HEADER_BYTES 44
/*! The RIFF sizes are 32-bit: the largest data chunk a WAV can describe, in whole frames. */
#define MAX_FRAMES ((UINT32_MAX - (WAV_HEADER_BYTES - 8)) / (GSM_FRAME_SAMPLES * 2))
#define OUTPUT_DIR_MODE 02775

enum {
	OPT_MKDIR = (1 << 0),
};

AST_APP_OPTIONS(convert_opts, {
	AST_APP_OPTION('d', OPT_MKDIR),
});

/*! The outcome of one conversion, as the channel variables will say it. */
struct outcome {
	const char *detail;
	char reason[256];
	off_t bytes;
	size_t frames;
};

static void __attribute__((format(printf, 3, 4))) fail(struct outcome *out, const char *detail, const char *fmt, ...)
{
	va_list ap;
	char *c;

	out->detail = detail;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
	/* The dialplan pastes the reason into UserEvent(), whose arguments a comma would split,
	 * and AMI into lines: keep both intact. */
	for (c = out->reason; *c; c++) {
		if (*c == ',' || *c == '|') {
			*c = ';';
		} else if (*c == '\r' || *c == '\n' || (unsigned char) *c < 0x20) {
			*c = ' ';
		}
	}
}

static int ends_with_wav(const char *path)
{
	size_t len = strlen(path);

	return len > 4 && !strcasecmp(path + len - 4, ".wav");
}

/*! \brief write() all of \a len bytes, through short writes and EINTR. */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

/*! \brief read() up to \a len bytes, through short reads and EINTR; returns the count, or -1. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -1;
		}
		if (n == 0) {
			break;
		}
		got += (size_t) n;
	}
	return (ssize_t) got;
}

static void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

/*! \brief The canonical 44-byte header: PCM, 8 kHz, mono, 16-bit, \a data_bytes of samples. */
static void wav_header(unsigned char *h, uint32_t data_bytes)
{
	memcpy(h, "RIFF", 4);
	put_le32(h + 4, 36 + data_bytes);
	memcpy(h + 8, "WAVEfmt ", 8);
	put_le32(h + 16, 16);
	put_le16(h + 20, 1);
	put_le16(h + 22, 1);
	put_le32(h + 24, 8000);
	put_le32(h + 28, 16000);
	put_le16(h + 32, 2);
	put_le16(h + 34, 16);
	memcpy(h + 36, "data", 4);
	put_le32(h + 40, data_bytes);
}

/*!
 * \brief Creates the missing directories of \a dir, each with mode 2775 (umask aside).
 * \retval 0 the directory exists now
 * \retval -1 errno says why
 */
static int make_dirs(const char *dir)
{
	char *path = ast_strdupa(dir);
	char *slash;
	struct stat st;

	/* Skip the leading '/', then create each missing component in turn. */
	for (slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
		if (slash) {
			*slash = '\0';
		}
		if (mkdir(path, OUTPUT_DIR_MODE) == 0) {
			/* mkdir() honours the umask and, on Linux, not the setgid bit: set the mode exactly. */
			if (chmod(path, OUTPUT_DIR_MODE)) {
				return -1;
			}
		} else if (errno != EEXIST) {
			return -1;
		} else if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
			/* Another job may have made it meanwhile (EEXIST): fine if it is a directory. */
			errno = ENOTDIR;
			return -1;
		}
		if (!slash) {
			return 0;
		}
		*slash = '/';
	}
}

/*! \brief The name of the temporary file: beside the output, unique per channel. */
static int temp_name(char *buf, size_t len, const char *output, const char *uniqueid)
{
	char id[129];
	size_t i;
	int n;

	ast_copy_string(id, uniqueid, sizeof(id));
	for (i = 0; id[i]; i++) {
		if (!isalnum((unsigned char) id[i]) && !strchr("._:-", id[i])) {
			id[i] = '_';
		}
	}
	n = snprintf(buf, len, "%s.tmp-%s.wav", output, id);
	return n < 0 || (size_t) n >= len ? -1 : 0;
}

/*!
 * \brief Opens \a input for reading if, and only if, it is a regular file.
 * \return the descriptor, or -1 with \a out filled in
 */
static int open_input(const char *input, struct stat *st, struct outcome *out)
{
	struct stat lst;
	int fd;

	if (lstat(input, &lst)) {
		if (errno == ENOENT || errno == ENOTDIR) {
			fail(out, "input-missing", "the input does not exist: %s", input);
		} else {
			fail(out, "input-unreadable", "cannot stat the input %s: %s", input, strerror(errno));
		}
		return -1;
	}
	if (!S_ISREG(lst.st_mode)) {
		fail(out, "input-not-regular", "the input is not a regular file but %s: %s",
			S_ISDIR(lst.st_mode) ? "a directory" : S_ISLNK(lst.st_mode) ? "a symbolic link" :
			S_ISFIFO(lst.st_mode) ? "a FIFO" : S_ISSOCK(lst.st_mode) ? "a socket" : "a device", input);
		return -1;
	}
	/* O_NONBLOCK: should the name have become a FIFO since lstat(), open() must not wait for a writer. */
	fd = open(input, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		fail(out, errno == ENOENT ? "input-missing" : "input-unreadable", "cannot open the input %s: %s",
			input, strerror(errno));
		return -1;
	}
	if (fstat(fd, st)) {
		fail(out, "input-unreadable", "cannot stat the open input %s: %s", input, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode) || st->st_dev != lst.st_dev || st->st_ino != lst.st_ino) {
		fail(out, "input-not-regular", "the input changed into something else while it was opened: %s", input);
		close(fd);
		return -1;
	}
	return fd;
}

/*!
 * \brief Decodes \a frames whole frames from \a in and appends their samples to \a tmp.
 * \retval 0 every frame decoded into 160 samples and written
 * \retval -1 \a out says why
 */
static int decode(struct ast_channel *chan, int in, int tmp, size_t frames, struct outcome *out)
{
	unsigned char gsm[FRAMES_PER_BATCH * GSM_FRAME_BYTES];
	struct ast_trans_pvt *path;
	size_t done = 0;
	int res = -1;

	path = ast_translator_build_path(ast_format_slin, ast_format_gsm);
	if (!path) {
		fail(out, "no-codec", "no GSM decoder: load codec_gsm.so");
		return -1;
	}

	while (done < frames) {
		size_t batch = MIN(frames - done, FRAMES_PER_BATCH);
		size_t want = batch * GSM_FRAME_BYTES;
		struct ast_frame f = {
			.frametype = AST_FRAME_VOICE,
			.datalen = (int) want,
			.samples = (int) (batch * GSM_FRAME_SAMPLES),
			.src = app,
		};
		struct ast_frame *decoded, *cur;
		size_t samples = 0;
		ssize_t got;

		if (ast_check_hangup_locked(chan)) {
			fail(out, "hangup", "the channel hung up after %zu of %zu frames", done, frames);
			goto cleanup;
		}
		got = read_full(in, gsm, want);
		if (got < 0) {
			fail(out, "input-unreadable", "cannot read the input: %s", strerror(errno));
			goto cleanup;
		}
		if ((size_t) got != want) {
			fail(out, "input-changed", "the input shrank while it was read (frame %zu of %zu)", done, frames);
			goto cleanup;
		}
		f.subclass.format = ast_format_gsm;
		f.data.ptr = gsm;

		decoded = ast_translate(path, &f, 0);
		for (cur = decoded; cur; cur = AST_LIST_NEXT(cur, frame_list)) {
			if (cur->frametype != AST_FRAME_VOICE || cur->datalen != cur->samples * 2) {
				samples = 0;
				break;
			}
#if __BYTE_ORDER == __BIG_ENDIAN
			{
				/* Signed linear is in the host's order; a WAV is little-endian. */
				uint16_t *sample = cur->data.ptr;
				int i;

				for (i = 0; i < cur->samples; i++) {
					sample[i] = (uint16_t) ((sample[i] << 8) | (sample[i] >> 8));
				}
			}
#endif
			if (write_all(tmp, cur->data.ptr, (size_t) cur->datalen)) {
				fail(out, "output-failed", "cannot write the output: %s", strerror(errno));
				ast_frfree(decoded);
				goto cleanup;
			}
			samples += (size_t) cur->samples;
		}
		if (decoded) {
			ast_frfree(decoded);
		}
		if (samples != batch * GSM_FRAME_SAMPLES) {
			/* codec_gsm stops at a frame whose signature nibble is not 0xD: find which one. */
			size_t bad = 0;

			while (bad < batch && (gsm[bad * GSM_FRAME_BYTES] >> 4) == 0xD) {
				bad++;
			}
			fail(out, "input-corrupt", "GSM frame %zu of %zu cannot be decoded", done + bad + 1, frames);
			goto cleanup;
		}
		done += batch;
	}
	res = 0;

cleanup:
	ast_translator_free_path(path);
	return res;
}

/*! \brief The conversion: fills \a out; returns 0, or -1 if the channel hung up. */
static int convert(struct ast_channel *chan, const char *input, const char *output, int mkdirs, struct outcome *out)
{
	char *dir = ast_strdupa(output);
	char *slash = strrchr(dir, '/');
	char tmp_path[PATH_MAX];
	unsigned char header[WAV_HEADER_BYTES];
	struct stat st, dst;
	size_t frames;
	uint32_t data_bytes;
	int in = -1, tmp = -1, tmp_created = 0, res = 0;

	if (input[0] != '/' || output[0] != '/' || !ends_with_wav(output) || !slash) {
		fail(out, "invalid-arguments", "usage: Convert(/input.gsm,/output.wav[,d])");
		return 0;
	}
	*slash = '\0';
	if (!*dir) {
		fail(out, "invalid-arguments", "the output cannot be in the root directory: %s", output);
		return 0;
	}

	in = open_input(input, &st, out);
	if (in < 0) {
		return 0;
	}
	if (st.st_size < GSM_FRAME_BYTES) {
		fail(out, "input-empty", "the input holds no whole GSM frame (%jd bytes): %s", (intmax_t) st.st_size, input);
		goto cleanup;
	}
	if ((uintmax_t) st.st_size / GSM_FRAME_BYTES > MAX_FRAMES) {
		fail(out, "input-too-large", "the input (%jd bytes) is longer than a WAV file can hold: %s",
			(intmax_t) st.st_size, input);
		goto cleanup;
	}
	frames = (size_t) (st.st_size / GSM_FRAME_BYTES);
	data_bytes = (uint32_t) (frames * GSM_FRAME_SAMPLES * 2);

	if (stat(dir, &dst) || !S_ISDIR(dst.st_mode)) {
		if (!mkdirs) {
			fail(out, "output-dir-missing", "the output directory does not exist: %s", dir);
			goto cleanup;
		}
		if (make_dirs(dir)) {
			fail(out, "output-dir-failed", "cannot create the output directory %s: %s", dir, strerror(errno));
			goto cleanup;
		}
	}

	if (temp_name(tmp_path, sizeof(tmp_path), output, ast_channel_uniqueid(chan))) {
		fail(out, "invalid-arguments", "the output path is too long: %s", output);
		goto cleanup;
	}
	/* O_EXCL | O_NOFOLLOW: never write through a name someone else put there. */
	tmp = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, AST_FILE_MODE);
	if (tmp < 0) {
		fail(out, "output-failed", "cannot create %s: %s", tmp_path, strerror(errno));
		goto cleanup;
	}
	tmp_created = 1;

	wav_header(header, data_bytes);
	if (write_all(tmp, header, sizeof(header))) {
		fail(out, "output-failed", "cannot write the output: %s", strerror(errno));
		goto cleanup;
	}
	if (decode(chan, in, tmp, frames, out)) {
		res = !strcmp(out->detail, "hangup") ? -1 : 0;
		goto cleanup;
	}
	/* close() reports what a network file system deferred: only a clean close may be renamed. */
	if (close(tmp)) {
		tmp = -1;
		fail(out, "output-failed", "cannot write the output: %s", strerror(errno));
		goto cleanup;
	}
	tmp = -1;
	if (rename(tmp_path, output)) {
		fail(out, "output-failed", "cannot rename %s into place: %s", tmp_path, strerror(errno));
		goto cleanup;
	}
	tmp_created = 0;
	out->detail = "converted";
	ast_copy_string(out->reason, "converted", sizeof(out->reason));
	out->bytes = WAV_HEADER_BYTES + (off_t) data_bytes;
	out->frames = frames;

cleanup:
	if (tmp >= 0) {
		close(tmp);
	}
	if (tmp_created && unlink(tmp_path) && errno != ENOENT) {
		ast_log(LOG_WARNING, "Convert: cannot remove the temporary file %s: %s\n", tmp_path, strerror(errno));
	}
	if (in >= 0) {
		close(in);
	}
	return res;
}

static int convert_exec(struct ast_channel *chan, const char *data)
{
	struct outcome out = { .detail = "invalid-arguments", .reason = "" };
	struct ast_flags opts = { 0 };
	char bytes[32], frames[32];
	char *parse;
	int res = 0;
	AST_DECLARE_APP_ARGS(args,
		AST_APP_ARG(input);
		AST_APP_ARG(output);
		AST_APP_ARG(options);
	);

	parse = ast_strdupa(S_OR(data, ""));
	AST_STANDARD_APP_ARGS(args, parse);

	if (ast_strlen_zero(args.input) || ast_strlen_zero(args.output)) {
		fail(&out, "invalid-arguments", "usage: Convert(/input.gsm,/output.wav[,d])");
	} else if (!ast_strlen_zero(args.options) && ast_app_parse_options(convert_opts, &opts, NULL, args.options)) {
		fail(&out, "invalid-arguments", "unknown option in '%s' (only d)", args.options);
	} else {
		res = convert(chan, args.input, args.output, ast_test_flag(&opts, OPT_MKDIR), &out);
	}

	if (strcmp(out.detail, "converted")) {
		ast_log(LOG_NOTICE, "Convert(%s): %s\n", ast_channel_name(chan), out.reason);
	}
	snprintf(bytes, sizeof(bytes), "%jd", (intmax_t) out.bytes);
	snprintf(frames, sizeof(frames), "%zu", out.frames);
	pbx_builtin_setvar_helper(chan, "CONVERT_STATUS", strcmp(out.detail, "converted") ? "FAILED" : "SUCCESS");
	pbx_builtin_setvar_helper(chan, "CONVERT_DETAIL", out.detail);
	pbx_builtin_setvar_helper(chan, "CONVERT_REASON", out.reason);
	pbx_builtin_setvar_helper(chan, "CONVERT_BYTES", bytes);
	pbx_builtin_setvar_helper(chan, "CONVERT_FRAMES", frames);
	return res;
}

static int unload_module(void)
{
	return ast_unregister_application(app);
}

static int load_module(void)
{
	return ast_register_application_xml(app, convert_exec) ? AST_MODULE_LOAD_DECLINE : AST_MODULE_LOAD_SUCCESS;
}

AST_MODULE_INFO(ASTERISK_GPL_KEY, AST_MODFLAG_DEFAULT, "Convert(): GSM recordings to WAV, in process",
	.support_level = AST_MODULE_SUPPORT_EXTENDED,
	.load = load_module,
	.unload = unload_module,
	.requires = "codec_gsm",
);
