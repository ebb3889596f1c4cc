"""edge: offline face recognition for ARM door terminals."""
import os as _os

# OpenCV's own cap on decoded pixels, read once when cv2 is first imported: the images edge
# refuses are over 40 MP (edge.image.MAX_PIXELS), and OpenCV's default (2^30) lets a file whose
# header edge could not read allocate gigabytes before edge sees its size. A value set in the
# environment is kept.
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "40000000")
