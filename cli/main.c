/* The wirewarden binary: subcommand dispatch only. Each subcommand parses its
 * own options and returns its exit status (cli/cli.h); this file maps names to
 * them and answers --version, --help and `help SUBCOMMAND`. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef int (*cli_cmd_fn)(int argc, char **argv);

struct cli_cmd {
	const char *name;
	const char *summary;
	cli_cmd_fn run;              /* NULL: not implemented yet */
	void (*usage)(FILE *out);    /* NULL: no usage text yet */
};

static const struct cli_cmd cmds[] = {
	{ "sniff", "explain every MQTT connection in a capture or on a live interface", cmd_sniff, cmd_sniff_usage },
	{ "proxy", "run between MQTT clients and the broker, watch every session, enforce policies", cmd_proxy,
	  cmd_proxy_usage },
	{ "why", "every session of one client and why it ended, from captures, event logs and broker logs", cmd_why, cmd_why_usage },
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: wirewarden SUBCOMMAND [OPTIONS]\n"
		     "       wirewarden help SUBCOMMAND | --help | --version\n\nsubcommands:\n");
	for (i = 0; i < N_CMDS; i++)
		fprintf(out, "  %-8s %s%s\n", cmds[i].name, cmds[i].summary, cmds[i].run ? "" : " (not implemented yet)");
}

static const struct cli_cmd *find(const char *name)
{
	size_t i;

	for (i = 0; i < N_CMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static int not_implemented(const struct cli_cmd *c)
{
	fprintf(stderr, "wirewarden %s: not implemented yet; 'wirewarden sniff' is available\n", c->name);
	return CLI_USAGE;
}

static int help(int argc, char **argv)
{
	const struct cli_cmd *c;

	if (argc < 3) {
		usage(stdout);
		return CLI_OK;
	}
	c = find(argv[2]);
	if (c == NULL) {
		fprintf(stderr, "wirewarden help: no subcommand '%s'; run 'wirewarden --help' for the list\n", argv[2]);
		return CLI_USAGE;
	}
	if (c->usage == NULL)
		return not_implemented(c);
	c->usage(stdout);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	const struct cli_cmd *c;

	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("wirewarden %s\n", PACKAGE_VERSION);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "help") == 0)
		return help(argc, argv);
	c = find(argv[1]);
	if (c == NULL) {
		fprintf(stderr, "wirewarden: unknown subcommand '%s'; run 'wirewarden --help' for the list\n", argv[1]);
		return CLI_USAGE;
	}
	if (c->run == NULL)
		return not_implemented(c);
	return c->run(argc - 1, argv + 1);
}
