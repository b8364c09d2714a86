"""Label conventions shared by segmentation, OBA and evaluation.

Class ids are integers: 0 background, 1..254 classes, :data:`CLASS_NODATA` (255) nodata / ignored in every
uint8 class raster and mask geotool writes or reads. Label polygons carry their class id in
:data:`CLASS_COLUMN` once read.
"""

#: Column holding each label polygon's class id after reading (a name no user attribute will have).
CLASS_COLUMN = "_class"
#: Class raster / mask value for nodata and ignored pixels (uint8).
CLASS_NODATA = 255
