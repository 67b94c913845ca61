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
	<depend>openssl</depend>
	<support_level>extended</support_level>
 ***/

#include "asterisk.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
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

#include <openssl/evp.h>

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
					<literal>no-codec</literal>, <literal>no-digest</literal> or <literal>hangup</literal>.</para>
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
#define MAX_LEGS 2
/*! The RIFF sizes are 32-bit: the largest data chunk a WAV can describe, in whole frames. */
#define MAX_FRAMES(channels) ((UINT32_MAX - (WAV_HEADER_BYTES - 8)) / (GSM_FRAME_SAMPLES * 2 * (channels)))
#define OUTPUT_DIR_MODE 02775
/*! A 20 ms block is silent below this RMS: -50 dBFS (docs/messages.md, "audio"). */
#define SILENCE_DBFS -50.0
/*! What a level of no signal at all reports, instead of minus infinity. */
#define FLOOR_DBFS -120.0

enum {
	OPT_MKDIR = (1 << 0),
};

AST_APP_OPTIONS(convert_opts, {
	AST_APP_OPTION('d', OPT_MKDIR),
});

/*!
 * SHA-256 of what is read and written, for the hashes the next stage checks the files against:
 * OpenSSL's (Asterisk links libcrypto already), which uses the CPU's SHA extensions where there are
 * some: 30 us for a 3 s job here, against 250 us for a portable C implementation.
 */
static EVP_MD_CTX *sha256_new(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return NULL;
	}
	return c;
}

/*! \brief Finishes \a c into 64 lower-case hex digits and a NUL in \a hex; -1 if OpenSSL fails. */
static int sha256_hex(EVP_MD_CTX *c, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	if (EVP_DigestFinal_ex(c, md, &len) != 1 || len != 32) {
		return -1;
	}
	for (i = 0; i < len; i++) {
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	}
	return 0;
}

/*! What the next stage is told of one channel's audio (docs/messages.md, "audio"). */
struct audio_stats {
	uint64_t samples;
	uint64_t sum_squares;
	uint64_t clipped;
	uint64_t silent_blocks;
	int peak;
};

/*! \brief Counts one 20 ms block (160 samples) of a channel. */
static void audio_block(struct audio_stats *a, const int16_t *s, size_t n, size_t stride)
{
	static double silence_sum = 0;
	uint64_t sq = 0;
	size_t i;

	if (!silence_sum) {
		/* The sum of squares of a 160-sample block whose RMS is SILENCE_DBFS. */
		double rms = 32768.0 * pow(10.0, SILENCE_DBFS / 20.0);

		silence_sum = rms * rms * GSM_FRAME_SAMPLES;
	}
	for (i = 0; i < n; i++) {
		int v = s[i * stride];
		int mag = v < 0 ? -v : v;

		sq += (uint64_t) ((int64_t) v * v);
		if (mag > a->peak) {
			a->peak = mag;
		}
		if (v == INT16_MAX || v == INT16_MIN) {
			a->clipped++;
		}
	}
	a->samples += n;
	a->sum_squares += sq;
	if ((double) sq < silence_sum * ((double) n / GSM_FRAME_SAMPLES)) {
		a->silent_blocks++;
	}
}

static double dbfs(double amplitude)
{
	return amplitude <= 0 ? FLOOR_DBFS : MAX(FLOOR_DBFS, 20.0 * log10(amplitude / 32768.0));
}

/*! \brief Round half up to \a digits decimals: printf's own rounding of a tie differs from JavaScript's. */
static double round_to(double x, int digits)
{
	double f = pow(10.0, digits);

	return floor(x * f + 0.5) / f;
}

/*! \brief `duration_ms=…;peak_dbfs=…;rms_dbfs=…;silence_ratio=…;clipped_ratio=…` (no comma, no space). */
static void audio_text(const struct audio_stats *a, char *buf, size_t len)
{
	uint64_t blocks = a->samples / GSM_FRAME_SAMPLES;
	double rms = a->samples ? sqrt((double) a->sum_squares / (double) a->samples) : 0;

	snprintf(buf, len, "duration_ms=%" PRIu64 ";peak_dbfs=%.2f;rms_dbfs=%.2f;silence_ratio=%.4f;clipped_ratio=%.6f",
		a->samples / 8, round_to(dbfs(a->peak), 2), round_to(dbfs(rms), 2),
		round_to(blocks ? (double) a->silent_blocks / (double) blocks : 0.0, 4),
		round_to(a->samples ? (double) a->clipped / (double) a->samples : 0.0, 6));
}

/*! One input: a leg of the call, one channel of the WAV. */
struct leg {
	const char *path;
	int fd;
	struct stat st;
	size_t frames;
	struct ast_trans_pvt *decoder;
	EVP_MD_CTX *sha;
	struct audio_stats audio;
};

/*! The outcome of one conversion, as the channel variables will say it. */
struct outcome {
	const char *detail;
	char reason[256];
	off_t bytes;
	size_t frames;
	char input_sha256[MAX_LEGS * 65];
	char wav_sha256[65];
	char audio[MAX_LEGS * 128];
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

/*! \brief The canonical 44-byte header: PCM, 8 kHz, \a channels, 16-bit, \a data_bytes of samples. */
static void wav_header(unsigned char *h, uint16_t channels, uint32_t data_bytes)
{
	memcpy(h, "RIFF", 4);
	put_le32(h + 4, 36 + data_bytes);
	memcpy(h + 8, "WAVEfmt ", 8);
	put_le32(h + 16, 16);
	put_le16(h + 20, 1);
	put_le16(h + 22, channels);
	put_le32(h + 24, 8000);
	put_le32(h + 28, 16000u * channels);
	put_le16(h + 32, (uint16_t) (2 * channels));
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
 * \brief Opens a leg's input for reading if, and only if, it is a regular file.
 * \param what "the input", or "leg N's input" when there are two
 * \retval 0 \a leg's fd and st are set
 * \retval -1 \a out filled in
 */
static int open_input(struct leg *leg, const char *what, struct outcome *out)
{
	struct stat lst;
	const char *input = leg->path;

	if (lstat(input, &lst)) {
		if (errno == ENOENT || errno == ENOTDIR) {
			fail(out, "input-missing", "%s does not exist: %s", what, input);
		} else {
			fail(out, "input-unreadable", "cannot stat %s %s: %s", what, input, strerror(errno));
		}
		return -1;
	}
	if (!S_ISREG(lst.st_mode)) {
		fail(out, "input-not-regular", "%s is not a regular file but %s: %s", what,
			S_ISDIR(lst.st_mode) ? "a directory" : S_ISLNK(lst.st_mode) ? "a symbolic link" :
			S_ISFIFO(lst.st_mode) ? "a FIFO" : S_ISSOCK(lst.st_mode) ? "a socket" : "a device", input);
		return -1;
	}
	/* O_NONBLOCK: should the name have become a FIFO since lstat(), open() must not wait for a writer. */
	leg->fd = open(input, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (leg->fd < 0) {
		fail(out, errno == ENOENT ? "input-missing" : "input-unreadable", "cannot open %s %s: %s",
			what, input, strerror(errno));
		return -1;
	}
	if (fstat(leg->fd, &leg->st)) {
		fail(out, "input-unreadable", "cannot stat %s %s: %s", what, input, strerror(errno));
		return -1;
	}
	if (!S_ISREG(leg->st.st_mode) || leg->st.st_dev != lst.st_dev || leg->st.st_ino != lst.st_ino) {
		fail(out, "input-not-regular", "%s changed into something else while it was opened: %s", what, input);
		return -1;
	}
	if (leg->st.st_size < GSM_FRAME_BYTES) {
		fail(out, "input-empty", "%s holds no whole GSM frame (%jd bytes): %s", what, (intmax_t) leg->st.st_size, input);
		return -1;
	}
	leg->frames = (size_t) (leg->st.st_size / GSM_FRAME_BYTES);
	return 0;
}

/*!
 * \brief Reads and decodes the next \a batch frames of \a leg into \a pcm (every \a stride-th
 * sample), hashing the bytes read; past the leg's end, silence.
 * \param first the number of the batch's first frame, for the reason
 * \retval 0 done
 * \retval -1 \a out says why
 */
static int decode_batch(struct leg *leg, const char *what, size_t first, size_t batch, int16_t *pcm, size_t stride,
	struct outcome *out)
{
	unsigned char gsm[FRAMES_PER_BATCH * GSM_FRAME_BYTES];
	size_t have = first >= leg->frames ? 0 : MIN(batch, leg->frames - first);
	size_t want = have * GSM_FRAME_BYTES, samples = 0, i;
	struct ast_frame f = {
		.frametype = AST_FRAME_VOICE,
		.datalen = (int) want,
		.samples = (int) (have * GSM_FRAME_SAMPLES),
		.src = app,
	};
	struct ast_frame *decoded, *cur;
	ssize_t got;

	for (i = have * GSM_FRAME_SAMPLES; i < batch * GSM_FRAME_SAMPLES; i++) {
		pcm[i * stride] = 0;
	}
	if (!have) {
		return 0;
	}
	got = read_full(leg->fd, gsm, want);
	if (got < 0) {
		fail(out, "input-unreadable", "cannot read %s: %s", what, strerror(errno));
		return -1;
	}
	if ((size_t) got != want) {
		fail(out, "input-changed", "%s shrank while it was read (frame %zu of %zu)", what, first, leg->frames);
		return -1;
	}
	if (EVP_DigestUpdate(leg->sha, gsm, want) != 1) {
		fail(out, "no-digest", "SHA-256 failed (OpenSSL)");
		return -1;
	}
	f.subclass.format = ast_format_gsm;
	f.data.ptr = gsm;

	decoded = ast_translate(leg->decoder, &f, 0);
	for (cur = decoded; cur; cur = AST_LIST_NEXT(cur, frame_list)) {
		const int16_t *s = cur->data.ptr;
		size_t n = (size_t) cur->samples, j;

		if (cur->frametype != AST_FRAME_VOICE || cur->datalen != cur->samples * 2 || samples + n > have * GSM_FRAME_SAMPLES) {
			samples = 0;
			break;
		}
		for (j = 0; j < n; j++) {
			pcm[(samples + j) * stride] = s[j];
		}
		samples += n;
	}
	if (decoded) {
		ast_frfree(decoded);
	}
	if (samples != have * GSM_FRAME_SAMPLES) {
		/* codec_gsm stops at a frame whose signature nibble is not 0xD: find which one. */
		size_t bad = 0;

		while (bad < have && (gsm[bad * GSM_FRAME_BYTES] >> 4) == 0xD) {
			bad++;
		}
		fail(out, "input-corrupt", "%s%sGSM frame %zu of %zu cannot be decoded", strncmp(what, "leg", 3) ? "" : what,
			strncmp(what, "leg", 3) ? "" : ": ", first + bad + 1, leg->frames);
		return -1;
	}
	for (i = 0; i < have; i++) {
		audio_block(&leg->audio, pcm + i * GSM_FRAME_SAMPLES * stride, GSM_FRAME_SAMPLES, stride);
	}
	return 0;
}

/*! \brief Hashes what is left of a leg after its whole frames (a cut-short last frame): the hash is the file's. */
static int hash_tail(struct leg *leg, const char *what, struct outcome *out)
{
	unsigned char tail[GSM_FRAME_BYTES];
	size_t want = (size_t) (leg->st.st_size - (off_t) (leg->frames * GSM_FRAME_BYTES));
	ssize_t got;

	if (!want) {
		return 0;
	}
	got = read_full(leg->fd, tail, want);
	if (got < 0 || (size_t) got != want) {
		fail(out, "input-changed", "%s changed while it was read", what);
		return -1;
	}
	if (EVP_DigestUpdate(leg->sha, tail, want) != 1) {
		fail(out, "no-digest", "SHA-256 failed (OpenSSL)");
		return -1;
	}
	return 0;
}

/*!
 * \brief Decodes every leg into \a tmp: one channel per leg, interleaved, the shorter padded with silence.
 * \retval 0 written, every frame decoded into 160 samples
 * \retval -1 \a out says why
 */
static int decode(struct ast_channel *chan, struct leg *legs, size_t n_legs, char what[][24], size_t frames, int tmp,
	EVP_MD_CTX *wav_sha, struct outcome *out)
{
	int16_t pcm[FRAMES_PER_BATCH * GSM_FRAME_SAMPLES * MAX_LEGS];
	size_t done, l;

	for (done = 0; done < frames; done += FRAMES_PER_BATCH) {
		size_t batch = MIN(frames - done, FRAMES_PER_BATCH);
		size_t bytes = batch * GSM_FRAME_SAMPLES * n_legs * 2;

		if (ast_check_hangup_locked(chan)) {
			fail(out, "hangup", "the channel hung up after %zu of %zu frames", done, frames);
			return -1;
		}
		for (l = 0; l < n_legs; l++) {
			if (decode_batch(&legs[l], what[l], done, batch, pcm + l, n_legs, out)) {
				return -1;
			}
		}
#if __BYTE_ORDER == __BIG_ENDIAN
		{
			/* Signed linear is in the host's order; a WAV is little-endian. */
			size_t i;

			for (i = 0; i < bytes / 2; i++) {
				uint16_t v = (uint16_t) pcm[i];

				pcm[i] = (int16_t) ((v << 8) | (v >> 8));
			}
		}
#endif
		if (write_all(tmp, pcm, bytes)) {
			fail(out, "output-failed", "cannot write the output: %s", strerror(errno));
			return -1;
		}
		if (EVP_DigestUpdate(wav_sha, pcm, bytes) != 1) {
			fail(out, "no-digest", "SHA-256 failed (OpenSSL)");
			return -1;
		}
	}
	for (l = 0; l < n_legs; l++) {
		if (hash_tail(&legs[l], what[l], out)) {
			return -1;
		}
	}
	return 0;
}

/*! \brief The conversion: fills \a out; returns 0, or -1 if the channel hung up. */
static int convert(struct ast_channel *chan, char *inputs, const char *output, int mkdirs, struct outcome *out)
{
	char *dir = ast_strdupa(output);
	char *slash = strrchr(dir, '/');
	char tmp_path[PATH_MAX];
	char what[MAX_LEGS][24];
	unsigned char header[WAV_HEADER_BYTES];
	struct leg legs[MAX_LEGS];
	EVP_MD_CTX *wav_sha = NULL;
	struct stat dst;
	size_t n_legs = 0, frames = 0, l;
	uint32_t data_bytes;
	int tmp = -1, tmp_created = 0, res = 0;
	char *input;

	memset(legs, 0, sizeof(legs));
	for (l = 0; l < MAX_LEGS; l++) {
		legs[l].fd = -1;
	}
	while ((input = strsep(&inputs, "&"))) {
		if (n_legs == MAX_LEGS || input[0] != '/') {
			fail(out, "invalid-arguments", "usage: Convert(/input.gsm[&/leg2.gsm],/output.wav[,d])");
			return 0;
		}
		legs[n_legs++].path = input;
	}
	if (!n_legs || output[0] != '/' || !ends_with_wav(output) || !slash) {
		fail(out, "invalid-arguments", "usage: Convert(/input.gsm[&/leg2.gsm],/output.wav[,d])");
		return 0;
	}
	*slash = '\0';
	if (!*dir) {
		fail(out, "invalid-arguments", "the output cannot be in the root directory: %s", output);
		return 0;
	}

	for (l = 0; l < n_legs; l++) {
		if (n_legs == 1) {
			ast_copy_string(what[l], "the input", sizeof(what[l]));
		} else {
			snprintf(what[l], sizeof(what[l]), "leg %zu", l + 1);
		}
		if (open_input(&legs[l], what[l], out)) {
			goto cleanup;
		}
		frames = MAX(frames, legs[l].frames);
	}
	for (l = 0; l < n_legs; l++) {
		if (legs[l].frames > MAX_FRAMES(n_legs)) {
			fail(out, "input-too-large", "%s (%jd bytes) is longer than a WAV file can hold: %s", what[l],
				(intmax_t) legs[l].st.st_size, legs[l].path);
			goto cleanup;
		}
	}
	data_bytes = (uint32_t) (frames * GSM_FRAME_SAMPLES * 2 * n_legs);

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
	for (l = 0; l < n_legs; l++) {
		legs[l].decoder = ast_translator_build_path(ast_format_slin, ast_format_gsm);
		if (!legs[l].decoder) {
			fail(out, "no-codec", "no GSM decoder: load codec_gsm.so");
			goto cleanup;
		}
		legs[l].sha = sha256_new();
		if (!legs[l].sha) {
			fail(out, "no-digest", "SHA-256 is not available (OpenSSL)");
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

	wav_header(header, (uint16_t) n_legs, data_bytes);
	wav_sha = sha256_new();
	if (!wav_sha || EVP_DigestUpdate(wav_sha, header, sizeof(header)) != 1) {
		fail(out, "no-digest", "SHA-256 is not available (OpenSSL)");
		goto cleanup;
	}
	if (write_all(tmp, header, sizeof(header))) {
		fail(out, "output-failed", "cannot write the output: %s", strerror(errno));
		goto cleanup;
	}
	if (decode(chan, legs, n_legs, what, frames, tmp, wav_sha, out)) {
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
	/* The WAV is in place now: a digest that fails leaves its hash empty rather than undoing the rename. */
	if (sha256_hex(wav_sha, out->wav_sha256)) {
		out->wav_sha256[0] = '\0';
	}
	for (l = 0; l < n_legs; l++) {
		char hex[65], audio[128];

		if (sha256_hex(legs[l].sha, hex)) {
			hex[0] = '\0';
		}
		audio_text(&legs[l].audio, audio, sizeof(audio));
		/* One per leg, separated by a space. */
		snprintf(out->input_sha256 + strlen(out->input_sha256), sizeof(out->input_sha256) - strlen(out->input_sha256),
			"%s%s", l ? " " : "", hex);
		snprintf(out->audio + strlen(out->audio), sizeof(out->audio) - strlen(out->audio), "%s%s", l ? " " : "", audio);
	}

cleanup:
	if (tmp >= 0) {
		close(tmp);
	}
	if (tmp_created && unlink(tmp_path) && errno != ENOENT) {
		ast_log(LOG_WARNING, "Convert: cannot remove the temporary file %s: %s\n", tmp_path, strerror(errno));
	}
	EVP_MD_CTX_free(wav_sha);
	for (l = 0; l < MAX_LEGS; l++) {
		EVP_MD_CTX_free(legs[l].sha);
		if (legs[l].decoder) {
			ast_translator_free_path(legs[l].decoder);
		}
		if (legs[l].fd >= 0) {
			close(legs[l].fd);
		}
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
		fail(&out, "invalid-arguments", "usage: Convert(/input.gsm[&/leg2.gsm],/output.wav[,d])");
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
	pbx_builtin_setvar_helper(chan, "CONVERT_INPUT_SHA256", out.input_sha256);
	pbx_builtin_setvar_helper(chan, "CONVERT_WAV_SHA256", out.wav_sha256);
	pbx_builtin_setvar_helper(chan, "CONVERT_AUDIO", out.audio);
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
