# cmake -DREADME=<README.md> -DSOURCE=<file> -P CheckReadmeQuotes.cmake
# Fails unless README quotes SOURCE verbatim (so the README's code sample is the compiled one).
file(READ "${README}" readme)
file(READ "${SOURCE}" source)
string(FIND "${readme}" "${source}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${README} does not quote ${SOURCE} verbatim; copy the file into the README's code block")
endif()
message(STATUS "${README} quotes ${SOURCE}")
