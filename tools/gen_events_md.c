/* Writes doc/events.md, the event catalog rendered from policy/events.def and
 * policy/reasons.def, to standard output. Run it after editing either table:
 *   tools/gen_events_md > doc/events.md
 * The unit test test_events fails until the committed file matches. */
#include <stdio.h>
#include <sysexits.h>

#include "sink/sink.h"

int main(void)
{
	if (evt_catalog_markdown(stdout) != 0 || fflush(stdout) != 0) {
		perror("gen_events_md: stdout");
		return EX_IOERR;
	}
	return 0;
}
