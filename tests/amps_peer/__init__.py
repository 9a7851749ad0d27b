"""An AMPS peer (server and clients) written from 60East's public
documentation, for wirewarden's tests. Not AMPS. See doc/amps.md."""
